// Times the decode/preprocess shim (Sources/COpenCVCodec) on image files, as the front runs it
// for one model input: microseconds per image in decoding and in resize + crop + normalize,
// medians over alternating passes. tools/decode_bench.sh builds it twice, from a git revision
// and from the working tree, and runs the two in turn.
//
//   decode_bench [--resize 256] [--crop 224] [--seconds 2] [--jpeg exact|fast-upsampling|fast-idct|fast] FILE…
//
// Built against each revision's own header: VP_BENCH_PREPROCESS_SECONDS(report) names the
// report's resize + normalize time there, VP_BENCH_CROP_DECODING is defined where the spec
// has the crop-decoding switch and VP_BENCH_JPEG_OPTIONS where it has libjpeg-turbo's fast
// options (the script reads them off the header).
#include "COpenCVCodec.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

int main(int argc, char **argv) {
    vp_preprocess_spec spec{};
    spec.resize_short_side = 256;
    spec.crop_width = spec.crop_height = 224;
    double seconds = 2;
    std::string jpeg = "exact";
    std::vector<std::vector<uint8_t>> images;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--resize") == 0 && i + 1 < argc) {
            spec.resize_short_side = std::atoi(argv[++i]);
        } else if (std::strcmp(argv[i], "--crop") == 0 && i + 1 < argc) {
            spec.crop_width = spec.crop_height = std::atoi(argv[++i]);
        } else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = std::atof(argv[++i]);
        } else if (std::strcmp(argv[i], "--jpeg") == 0 && i + 1 < argc) {
            jpeg = argv[++i];
        } else {
            std::ifstream file(argv[i], std::ios::binary);
            images.emplace_back(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
        }
    }
    if (images.empty()) {
        std::fprintf(stderr, "usage: decode_bench [--resize N] [--crop N] [--seconds S] [--jpeg MODE] FILE…\n");
        return 64;
    }
#ifdef VP_BENCH_JPEG_OPTIONS
    spec.jpeg_fast_upsampling = jpeg == "fast-upsampling" || jpeg == "fast";
    spec.jpeg_fast_idct = jpeg == "fast-idct" || jpeg == "fast";
#endif
    if (jpeg != "exact" && jpeg != "fast-upsampling" && jpeg != "fast-idct" && jpeg != "fast") {
        std::fprintf(stderr, "--jpeg is exact, fast-upsampling, fast-idct or fast, not %s\n", jpeg.c_str());
        return 64;
    }
    for (int channel = 0; channel < 3; channel++) {
        spec.mean[channel] = 127;
        spec.std[channel] = 128;
    }
    spec.allow_dct_reduction = 1;
    spec.max_pixels = int64_t(1) << 27;
#ifdef VP_BENCH_CROP_DECODING
    spec.allow_crop_decoding = 1;
#endif
    std::vector<float> tensor(size_t(3) * spec.crop_width * spec.crop_height);
    std::vector<double> decode, preprocess;
    char message[256];
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
        for (const auto &image : images) {
            vp_preprocess_report report{};
            if (vp_codec_preprocess(image.data(), image.size(), &spec, tensor.data(), tensor.size(), &report, message, sizeof message) != VP_CODEC_OK) {
                std::fprintf(stderr, "decode_bench: %s\n", message);
                return 1;
            }
            decode.push_back(report.decode_seconds * 1e6);
            preprocess.push_back(VP_BENCH_PREPROCESS_SECONDS(report) * 1e6);
        }
    }
    auto median = [](std::vector<double> values) {
        std::nth_element(values.begin(), values.begin() + long(values.size() / 2), values.end());
        return values[values.size() / 2];
    };
    std::printf("{\"images\": %zu, \"decode_us\": %.1f, \"preprocess_us\": %.1f}\n", decode.size(), median(decode), median(preprocess));
    return 0;
}
