// libFuzzer entry point over the decode/preprocess shim (Sources/COpenCVCodec): every input
// is probed and then preprocessed the way the server does it, with DCT reduction and crop
// decoding on, and once more decoding every pixel: where both succeed, the tensors must be
// identical. Built with AddressSanitizer and UndefinedBehaviorSanitizer by tools/fuzz/run.sh.
#include "COpenCVCodec.h"

#include <cstdint>
#include <cstdlib>
#include <vector>

namespace {

/// A small model input keeps each execution cheap; the paths through the shim are the same.
constexpr int kCrop = 64;

vp_preprocess_spec spec() {
    vp_preprocess_spec spec{};
    spec.resize_short_side = 72;
    spec.crop_width = kCrop;
    spec.crop_height = kCrop;
    for (int channel = 0; channel < 3; channel++) {
        spec.mean[channel] = 127.5f;
        spec.std[channel] = 64.0f;
    }
    spec.channels_bgr = 0;
    spec.allow_dct_reduction = 1;
    spec.allow_crop_decoding = 1;
    // Large enough for every real corpus file, small enough that a hostile header claiming
    // a huge image is refused before it costs seconds or gigabytes.
    spec.max_pixels = 1 << 24;
    return spec;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const vp_preprocess_spec settings = spec();
    static const vp_preprocess_spec everyPixel = [] {
        vp_preprocess_spec full = spec();
        full.allow_crop_decoding = 0;
        return full;
    }();
    static std::vector<float> tensor(3 * kCrop * kCrop), fullTensor(3 * kCrop * kCrop);
    char message[256];
    vp_image_info info{};
    vp_codec_status probed = vp_codec_probe(data, size, &info, message, sizeof message);
    vp_preprocess_report report{};
    vp_codec_status status = vp_codec_preprocess(data, size, &settings, tensor.data(), tensor.size(), &report, message, sizeof message);
    // What the shim promises its callers, checked on every input.
    if (status == VP_CODEC_OK) {
        if (probed != VP_CODEC_OK || report.decoded_width <= 0 || report.decoded_height <= 0) abort();
        if (int64_t(info.width) * info.height > settings.max_pixels) abort();
        for (float value : tensor) {
            if (!(value >= -2.0f && value <= 2.1f)) abort();  // (0…255 − 127.5) / 64, and nothing else
        }
    } else if (status == VP_CODEC_INTERNAL || status == VP_CODEC_INVALID_ARGUMENT) {
        abort();  // hostile bytes must be reported as the input's fault, never the shim's
    }
    // Decoding only the crop's region reads the same pixels as decoding all of them. A full
    // decode may still fail where the crop's did not: past the region the data can be corrupt.
    vp_preprocess_report fullReport{};
    if (vp_codec_preprocess(data, size, &everyPixel, fullTensor.data(), fullTensor.size(), &fullReport, message, sizeof message) == VP_CODEC_OK &&
        status == VP_CODEC_OK && tensor != fullTensor) {
        abort();
    }
    // libjpeg-turbo's fast options (merged upsampling, fast inverse DCT) take other code paths
    // through the same hostile bytes.
    static const vp_preprocess_spec fast = [] {
        vp_preprocess_spec fast = spec();
        fast.jpeg_fast_upsampling = 1;
        fast.jpeg_fast_idct = 1;
        return fast;
    }();
    vp_codec_status fastStatus = vp_codec_preprocess(data, size, &fast, tensor.data(), tensor.size(), &report, message, sizeof message);
    if (fastStatus == VP_CODEC_INTERNAL || fastStatus == VP_CODEC_INVALID_ARGUMENT) abort();
    return 0;
}
