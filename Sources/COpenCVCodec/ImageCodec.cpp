// Decoding and preprocessing: header probe, pixel limit, JPEG decoded by libjpeg-turbo directly
// (JPEGDecoder.c) at a DCT-reduced scale and only where the centre crop reads, other formats by
// OpenCV; then resize, centre crop and normalization in one pass straight into the caller's
// NCHW float buffer.
#include "COpenCVCodec.h"
#include "JPEGDecoder.h"

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>

#include <chrono>
#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

// The fused resize's two inner loops, over plain arrays: compiled for AVX2 as well as for the
// baseline, the CPU choosing at load (target_clones), as OpenCV's own kernels dispatch.

/// Rounds to the nearest integer, ties to even (as numpy's rint), for 0 ≤ value < 2²²: adding
/// and taking away 2²³ + 2²² leaves no fraction bits, and the default rounding mode rounds.
/// Unlike `nearbyint`, it is two additions the compiler keeps in vector registers.
static inline float vp_round_to_integer(float value) {
    const float shift = 12582912.0f;
    return (value + shift) - shift;
}

/// `between[i]` = the blend of `upper[i]` and `lower[i]`, `weight` of the way to `lower`.
__attribute__((target_clones("avx2", "default"))) static void vp_blend_rows(const uint8_t *__restrict upper, const uint8_t *__restrict lower,
                                                                              float weight, size_t count, float *__restrict between) {
    for (size_t index = 0; index < count; index++) {
        const float top = upper[index], bottom = lower[index];
        between[index] = top + (bottom - top) * weight;
    }
}

/// One output row of one channel: each pixel blended between `values[left[x]]` and
/// `values[right[x]]`, rounded to 8 bits, then normalized.
__attribute__((target_clones("avx2", "default"))) static void vp_blend_columns(const float *__restrict values, const int32_t *__restrict left,
                                                                                 const int32_t *__restrict right, const float *__restrict weights,
                                                                                 int32_t width, float scale, float offset, float *__restrict out) {
    for (int32_t x = 0; x < width; x++) {
        const float a = values[left[x]], b = values[right[x]];
        const float value = std::min(std::max(a + (b - a) * weights[x], 0.0f), 255.0f);
        out[x] = vp_round_to_integer(value) * scale + offset;
    }
}

namespace {

/// Longest side ratio accepted after resizing: bounds the intermediate image's memory.
constexpr int64_t kMaxAspectRatio = 64;

vp_codec_status fail(char *message, size_t capacity, vp_codec_status status, const char *format, ...) {
    if (message != nullptr && capacity > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(message, capacity, format, args);
        va_end(args);
    }
    return status;
}

/// OpenCV logs decoder complaints to stderr; callers get them as status codes instead.
void silenceOpenCVLogging() {
    static std::once_flag once;
    std::call_once(once, [] { cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT); });
}

uint32_t bigEndian16(const uint8_t *p) { return (uint32_t(p[0]) << 8) | p[1]; }
uint32_t bigEndian32(const uint8_t *p) { return (bigEndian16(p) << 16) | bigEndian16(p + 2); }
uint32_t littleEndian16(const uint8_t *p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8); }
uint32_t littleEndian24(const uint8_t *p) { return littleEndian16(p) | (uint32_t(p[2]) << 16); }
uint32_t littleEndian32(const uint8_t *p) { return littleEndian16(p) | (littleEndian16(p + 2) << 16); }

bool startsWith(const uint8_t *data, size_t length, const char *signature, size_t count) {
    return length >= count && std::memcmp(data, signature, count) == 0;
}

bool isStartOfFrame(uint8_t marker) {
    return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

/// Walks JPEG markers to the frame header and on to the first scan; a file whose
/// entropy-coded data never reaches an end-of-image marker is truncated (libjpeg would
/// silently fill the missing rows with grey).
vp_codec_status probeJPEG(const uint8_t *data, size_t length, vp_image_info *info, char *message, size_t capacity) {
    size_t position = 2;
    bool haveFrame = false;
    while (true) {
        // Every marker starts with 0xFF (fill bytes may repeat it). libjpeg would skip stray
        // bytes to the next real marker, so anything else here could hide the true frame size.
        if (position < length && data[position] != 0xFF) {
            return fail(message, capacity, VP_CODEC_CORRUPT, "JPEG has data where a marker should be (offset %zu)", position);
        }
        while (position < length && data[position] == 0xFF) position++;
        if (position >= length) {
            return fail(message, capacity, VP_CODEC_TRUNCATED, "JPEG data ends inside its header (%zu bytes)", length);
        }
        const uint8_t marker = data[position++];
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;
        if (position + 2 > length) {
            return fail(message, capacity, VP_CODEC_TRUNCATED, "JPEG data ends inside its header (%zu bytes)", length);
        }
        const size_t segment = bigEndian16(data + position);
        if (segment < 2) return fail(message, capacity, VP_CODEC_CORRUPT, "JPEG segment with invalid length %zu", segment);
        if (position + segment > length) {
            return fail(message, capacity, VP_CODEC_TRUNCATED, "JPEG data ends inside its header (%zu bytes)", length);
        }
        if (isStartOfFrame(marker)) {
            if (segment < 8) return fail(message, capacity, VP_CODEC_CORRUPT, "JPEG frame header is too short");
            info->height = int32_t(bigEndian16(data + position + 3));
            info->width = int32_t(bigEndian16(data + position + 5));
            haveFrame = true;
        }
        position += segment;
        if (marker == 0xDA) break;
    }
    if (!haveFrame) return fail(message, capacity, VP_CODEC_CORRUPT, "JPEG has a scan but no frame header");
    for (size_t index = length - 1; index > position; index--) {
        if (data[index] == 0xD9 && data[index - 1] == 0xFF) return VP_CODEC_OK;
    }
    return fail(message, capacity, VP_CODEC_TRUNCATED, "JPEG data is truncated: no end-of-image marker after the scan (%zu bytes)", length);
}

vp_codec_status probePNG(const uint8_t *data, size_t length, vp_image_info *info, char *message, size_t capacity) {
    if (length < 33) return fail(message, capacity, VP_CODEC_TRUNCATED, "PNG data ends inside its header (%zu bytes)", length);
    if (std::memcmp(data + 12, "IHDR", 4) != 0) return fail(message, capacity, VP_CODEC_CORRUPT, "PNG does not start with an IHDR chunk");
    info->width = int32_t(std::min<uint32_t>(bigEndian32(data + 16), INT32_MAX));
    info->height = int32_t(std::min<uint32_t>(bigEndian32(data + 20), INT32_MAX));
    const size_t tail = std::min<size_t>(length, 4096);
    for (size_t index = length - tail; index + 4 <= length; index++) {
        if (std::memcmp(data + index, "IEND", 4) == 0) return VP_CODEC_OK;
    }
    return fail(message, capacity, VP_CODEC_TRUNCATED, "PNG data is truncated: no IEND chunk (%zu bytes)", length);
}

vp_codec_status probeBMP(const uint8_t *data, size_t length, vp_image_info *info, char *message, size_t capacity) {
    if (length < 26) return fail(message, capacity, VP_CODEC_TRUNCATED, "BMP data ends inside its header (%zu bytes)", length);
    const uint32_t declaredSize = littleEndian32(data + 2);
    if (declaredSize > length) {
        return fail(message, capacity, VP_CODEC_TRUNCATED, "BMP data is truncated: %zu of %u bytes", length, declaredSize);
    }
    if (littleEndian32(data + 14) == 12) {
        info->width = int32_t(littleEndian16(data + 18));
        info->height = int32_t(littleEndian16(data + 20));
    } else {
        info->width = int32_t(littleEndian32(data + 18));
        const int32_t height = int32_t(littleEndian32(data + 22));
        info->height = height == INT32_MIN ? INT32_MAX : std::abs(height);
    }
    if (info->width < 0) return fail(message, capacity, VP_CODEC_CORRUPT, "BMP header has a negative width");
    return VP_CODEC_OK;
}

vp_codec_status probeWebP(const uint8_t *data, size_t length, vp_image_info *info, char *message, size_t capacity) {
    if (length < 30) return fail(message, capacity, VP_CODEC_TRUNCATED, "WebP data ends inside its header (%zu bytes)", length);
    const uint64_t declaredSize = uint64_t(littleEndian32(data + 4)) + 8;
    if (declaredSize > length) {
        return fail(message, capacity, VP_CODEC_TRUNCATED, "WebP data is truncated: %zu of %llu bytes", length,
                    static_cast<unsigned long long>(declaredSize));
    }
    const uint8_t *chunk = data + 12;
    const uint8_t *payload = chunk + 8;
    if (std::memcmp(chunk, "VP8 ", 4) == 0) {
        if (payload[3] != 0x9D || payload[4] != 0x01 || payload[5] != 0x2A) {
            return fail(message, capacity, VP_CODEC_CORRUPT, "WebP lossy frame lacks its start code");
        }
        info->width = int32_t(littleEndian16(payload + 6) & 0x3FFF);
        info->height = int32_t(littleEndian16(payload + 8) & 0x3FFF);
    } else if (std::memcmp(chunk, "VP8L", 4) == 0) {
        if (payload[0] != 0x2F) return fail(message, capacity, VP_CODEC_CORRUPT, "WebP lossless frame lacks its signature");
        const uint32_t bits = littleEndian32(payload + 1);
        info->width = int32_t((bits & 0x3FFF) + 1);
        info->height = int32_t(((bits >> 14) & 0x3FFF) + 1);
    } else if (std::memcmp(chunk, "VP8X", 4) == 0) {
        if (payload[0] & 0x02) return fail(message, capacity, VP_CODEC_UNSUPPORTED_FORMAT, "animated WebP is not supported; send a still image");
        info->width = int32_t(littleEndian24(payload + 4) + 1);
        info->height = int32_t(littleEndian24(payload + 7) + 1);
    } else {
        return fail(message, capacity, VP_CODEC_CORRUPT, "WebP has an unknown first chunk");
    }
    return VP_CODEC_OK;
}

vp_codec_status probeTIFF(const uint8_t *data, size_t length, vp_image_info *info, char *message, size_t capacity) {
    const bool little = data[0] == 'I';
    auto read16 = [&](size_t at) { return little ? littleEndian16(data + at) : bigEndian16(data + at); };
    auto read32 = [&](size_t at) { return little ? littleEndian32(data + at) : bigEndian32(data + at); };
    if (length < 8) return fail(message, capacity, VP_CODEC_TRUNCATED, "TIFF data ends inside its header (%zu bytes)", length);
    const size_t directory = read32(4);
    if (directory + 2 > length) return fail(message, capacity, VP_CODEC_TRUNCATED, "TIFF data is truncated before its first directory");
    const size_t entries = read16(directory);
    if (directory + 2 + entries * 12 > length) return fail(message, capacity, VP_CODEC_TRUNCATED, "TIFF data is truncated inside its first directory");
    info->width = info->height = -1;
    for (size_t index = 0; index < entries; index++) {
        const size_t entry = directory + 2 + index * 12;
        const uint32_t tag = read16(entry), type = read16(entry + 2);
        const uint32_t value = type == 3 ? read16(entry + 8) : read32(entry + 8);
        // libtiff keeps the first of duplicated tags; so must the probe.
        if (tag == 256 && info->width < 0) info->width = int32_t(std::min<uint32_t>(value, INT32_MAX));
        if (tag == 257 && info->height < 0) info->height = int32_t(std::min<uint32_t>(value, INT32_MAX));
    }
    if (info->width < 0 || info->height < 0) return fail(message, capacity, VP_CODEC_CORRUPT, "TIFF directory lacks the image width or length");
    // A directory that links to another is a multi-page file (OpenCV would read the first page only).
    const size_t next = directory + 2 + entries * 12;
    if (next + 4 <= length && read32(next) != 0) {
        return fail(message, capacity, VP_CODEC_UNSUPPORTED_FORMAT, "multi-page TIFF is not supported; send one image per input");
    }
    return VP_CODEC_OK;
}

double secondsSince(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The largest libjpeg scale (1/2, 1/4, 1/8) that keeps the short side at or above the target.
int32_t dctScale(const vp_image_info &info, int32_t target) {
    const int64_t shortSide = std::min(info.width, info.height);
    for (int32_t scale : {8, 4, 2}) {
        if (shortSide >= int64_t(target) * scale) return scale;
    }
    return 1;
}

int decodeFlags(int32_t scale) {
    switch (scale) {
    case 8: return cv::IMREAD_REDUCED_COLOR_8;
    case 4: return cv::IMREAD_REDUCED_COLOR_4;
    case 2: return cv::IMREAD_REDUCED_COLOR_2;
    default: return cv::IMREAD_COLOR;
    }
}

/// Turns an image as stored into the image as shown, the way OpenCV's imdecode applies EXIF orientation.
void applyOrientation(cv::Mat &image, int32_t orientation) {
    if (orientation >= 5) {
        cv::Mat transposed;
        cv::transpose(image, transposed);
        image = transposed;
    }
    switch (orientation) {
    case 2: case 6: cv::flip(image, image, 1); break;
    case 3: case 7: cv::flip(image, image, -1); break;
    case 4: case 8: cv::flip(image, image, 0); break;
    default: break;
    }
}

vp_codec_status checkLimits(int32_t width, int32_t height, const vp_preprocess_spec &spec, char *message, size_t capacity);

/// The size a `width` × `height` image is resized to: its short side to the target, the long
/// side in proportion (rounded), never below the target.
cv::Size resizedSize(int32_t width, int32_t height, int32_t target) {
    const bool wide = width > height;
    const int32_t shortSide = wide ? height : width, longSide = wide ? width : height;
    const int32_t longResized = std::max(target, int32_t(std::lround(double(longSide) * target / shortSide)));
    return wide ? cv::Size(longResized, target) : cv::Size(target, longResized);
}

/// For the outputs [first, first + count) of a resize from `in` samples to `out`, the two
/// source samples each one blends and the second's weight: OpenCV's INTER_LINEAR mapping
/// (half-pixel centres, clamped at the edges), as tools/testdata's reference computes it.
struct Taps {
    std::vector<int32_t> low, high;
    std::vector<float> weight;

    Taps(int32_t in, int32_t out, int32_t first, int32_t count) : low(size_t(count)), high(size_t(count)), weight(size_t(count)) {
        const double ratio = double(in) / out;
        for (int32_t index = 0; index < count; index++) {
            const double source = (first + index + 0.5) * ratio - 0.5;
            const double left = std::floor(source);
            low[size_t(index)] = int32_t(std::clamp(left, 0.0, double(in - 1)));
            high[size_t(index)] = std::min(low[size_t(index)] + 1, in - 1);
            weight[size_t(index)] = left < 0 ? 0.0f : float(source - left);
        }
    }
};

/// Where the centre crop lies in an image of the decoded size, and the source pixels it reads.
struct CropPlan {
    cv::Size resized;
    Taps columns, rows;

    CropPlan(int32_t width, int32_t height, const vp_preprocess_spec &spec)
        : resized(resizedSize(width, height, spec.resize_short_side)),
          columns(width, resized.width, (resized.width - spec.crop_width) / 2, spec.crop_width),
          rows(height, resized.height, (resized.height - spec.crop_height) / 2, spec.crop_height) {}
};

/// Decoded pixels: the whole image, or the region of it the crop reads, placed at (x, y) in an
/// image of `width` × `height` (after DCT reduction and EXIF orientation).
struct Decoded {
    cv::Mat pixels;
    int32_t x = 0, y = 0, width = 0, height = 0;
    /// The crop's plan, when the decoder already made it to choose the region.
    std::optional<CropPlan> plan;
};

/// Decodes a JPEG at 1/`scale` into BGR with libjpeg-turbo and applies its EXIF orientation.
/// With `crop`, an upright image is decoded only in the rows and columns the centre crop reads
/// (with a margin of 16 pixels, past libjpeg's upsampling context). Leaves `decoded` empty for
/// colour spaces only OpenCV's own reader converts (CMYK, YCCK).
vp_codec_status decodeJPEG(const uint8_t *data, size_t length, int32_t scale, bool crop, const vp_preprocess_spec &spec, Decoded &decoded,
                           char *message, size_t capacity) {
    vp_jpeg_decoder *opened = nullptr;
    int32_t width = 0, height = 0;
    const vp_jpeg_options options = {spec.jpeg_fast_upsampling, spec.jpeg_fast_idct};
    const vp_jpeg_status status = vp_jpeg_open(data, length, scale, options, &opened, &width, &height, message, capacity);
    if (status == VP_JPEG_UNSUPPORTED) return VP_CODEC_OK;
    if (status != VP_JPEG_OK) return VP_CODEC_CORRUPT;
    const std::unique_ptr<vp_jpeg_decoder, void (*)(vp_jpeg_decoder *)> decoder(opened, vp_jpeg_close);
    const vp_codec_status limited = checkLimits(width, height, spec, message, capacity);
    if (limited != VP_CODEC_OK) return limited;
    const int32_t orientation = vp_jpeg_exif_orientation(data, length);
    if (crop && orientation == 1) {
        constexpr int32_t margin = 16;
        CropPlan plan(width, height, spec);
        int32_t x = std::max(0, plan.columns.low.front() - margin);
        int32_t columns = std::min(width, plan.columns.high.back() + 1 + margin) - x;
        const int32_t y = std::max(0, plan.rows.low.front() - margin);
        const int32_t rows = std::min(height, plan.rows.high.back() + 1 + margin) - y;
        cv::Mat pixels(rows, width, CV_8UC3);
        if (vp_jpeg_read_region(decoder.get(), &x, &columns, y, rows, pixels.data, pixels.step, message, capacity) != VP_JPEG_OK) {
            return VP_CODEC_CORRUPT;
        }
        decoded = Decoded{pixels.colRange(0, columns), x, y, width, height, std::move(plan)};
        return VP_CODEC_OK;
    }
    cv::Mat pixels(height, width, CV_8UC3);
    if (vp_jpeg_read(decoder.get(), pixels.data, pixels.step, message, capacity) != VP_JPEG_OK) return VP_CODEC_CORRUPT;
    applyOrientation(pixels, orientation);
    decoded = Decoded{pixels, 0, 0, pixels.cols, pixels.rows};
    return VP_CODEC_OK;
}

/// Refuses sizes over the pixel limit, and shapes whose resize would need an outsized image.
vp_codec_status checkLimits(int32_t width, int32_t height, const vp_preprocess_spec &spec, char *message, size_t capacity) {
    if (int64_t(width) * height > spec.max_pixels) {
        return fail(message, capacity, VP_CODEC_TOO_LARGE, "the image is %dx%d (%lld pixels), over the limit of %lld pixels", width,
                    height, static_cast<long long>(int64_t(width) * height), static_cast<long long>(spec.max_pixels));
    }
    const int64_t longSide = std::max(width, height), shortSide = std::min(width, height);
    if (longSide > shortSide * kMaxAspectRatio) {
        return fail(message, capacity, VP_CODEC_TOO_LARGE, "the image is %dx%d: aspect ratio over %lld:1 is not accepted", width,
                    height, static_cast<long long>(kMaxAspectRatio));
    }
    return VP_CODEC_OK;
}

/// Resizes, centre-crops and normalizes in one pass: each pixel of the crop is blended from its
/// four source pixels (between its two source rows first, over the columns the crop reads, then
/// along the row), rounded to 8 bits as an 8-bit resize would, and written as planar, normalized
/// floats in the model's channel order. Only the crop is computed, and the source may be just
/// the region it reads. The vertical blend runs over contiguous bytes; only the horizontal one
/// gathers.
void resizeCropNormalize(const Decoded &decoded, const vp_preprocess_spec &spec, float *output) {
    std::optional<CropPlan> own;
    if (!decoded.plan) own.emplace(decoded.width, decoded.height, spec);
    const CropPlan &plan = decoded.plan ? *decoded.plan : *own;
    const int32_t width = spec.crop_width;
    const size_t plane = size_t(width) * size_t(spec.crop_height);
    int source[3];
    float scale[3], offset[3];
    for (int channel = 0; channel < 3; channel++) {
        source[channel] = spec.channels_bgr ? channel : 2 - channel;
        scale[channel] = 1.0f / spec.std[channel];
        offset[channel] = -spec.mean[channel] * scale[channel];
    }
    // The source columns the crop reads, and where each output pixel's two lie among them.
    const int32_t first = plan.columns.low.front(), span = plan.columns.high.back() + 1 - first;
    std::vector<int32_t> left(static_cast<size_t>(width)), right(static_cast<size_t>(width));
    for (int32_t x = 0; x < width; x++) {
        left[size_t(x)] = (plan.columns.low[size_t(x)] - first) * 3;
        right[size_t(x)] = (plan.columns.high[size_t(x)] - first) * 3;
    }
    std::vector<float> between(size_t(span) * 3);
    for (int32_t y = 0; y < spec.crop_height; y++) {
        const uint8_t *upper = decoded.pixels.ptr<uint8_t>(plan.rows.low[size_t(y)] - decoded.y) + size_t(first - decoded.x) * 3;
        const uint8_t *lower = decoded.pixels.ptr<uint8_t>(plan.rows.high[size_t(y)] - decoded.y) + size_t(first - decoded.x) * 3;
        vp_blend_rows(upper, lower, plan.rows.weight[size_t(y)], between.size(), between.data());
        for (int channel = 0; channel < 3; channel++) {
            vp_blend_columns(between.data() + source[channel], left.data(), right.data(), plan.columns.weight.data(), width, scale[channel],
                             offset[channel], output + channel * plane + size_t(y) * size_t(width));
        }
    }
}

} // namespace

extern "C" vp_codec_status vp_codec_probe(const uint8_t *data, size_t length, vp_image_info *info, char *message,
                                          size_t capacity) {
    *info = vp_image_info{VP_FORMAT_UNKNOWN, 0, 0};
    if (data == nullptr || length == 0) return fail(message, capacity, VP_CODEC_EMPTY, "the image is empty (0 bytes)");
    if (startsWith(data, length, "\xFF\xD8\xFF", 3)) {
        info->format = VP_FORMAT_JPEG;
        return probeJPEG(data, length, info, message, capacity);
    }
    if (startsWith(data, length, "\x89PNG\r\n\x1A\n", 8)) {
        info->format = VP_FORMAT_PNG;
        return probePNG(data, length, info, message, capacity);
    }
    if (startsWith(data, length, "BM", 2)) {
        info->format = VP_FORMAT_BMP;
        return probeBMP(data, length, info, message, capacity);
    }
    if (startsWith(data, length, "RIFF", 4) && length >= 12 && std::memcmp(data + 8, "WEBP", 4) == 0) {
        info->format = VP_FORMAT_WEBP;
        return probeWebP(data, length, info, message, capacity);
    }
    if (startsWith(data, length, "II*\0", 4) || startsWith(data, length, "MM\0*", 4)) {
        info->format = VP_FORMAT_TIFF;
        return probeTIFF(data, length, info, message, capacity);
    }
    if (startsWith(data, length, "GIF87a", 6) || startsWith(data, length, "GIF89a", 6)) {
        info->format = VP_FORMAT_GIF;
        return fail(message, capacity, VP_CODEC_UNSUPPORTED_FORMAT, "GIF is not supported; send JPEG, PNG, BMP, WebP or TIFF");
    }
    return fail(message, capacity, VP_CODEC_UNSUPPORTED_FORMAT,
                "not a supported image (%zu bytes with no JPEG, PNG, BMP, WebP or TIFF signature)", length);
}

extern "C" int64_t vp_codec_working_bytes(const vp_image_info *info, const vp_preprocess_spec *spec) {
    const int32_t scale = (info->format == VP_FORMAT_JPEG && spec->allow_dct_reduction) ? dctScale(*info, spec->resize_short_side) : 1;
    const int64_t width = (int64_t(info->width) + scale - 1) / scale, height = (int64_t(info->height) + scale - 1) / scale;
    const int64_t shortSide = std::max<int64_t>(1, std::min(width, height)), longSide = std::max(width, height);
    const int64_t target = spec->resize_short_side;
    const int64_t resized = target * std::max(target, longSide * target / shortSide + 1);
    return 3 * (2 * width * height + resized);
}

extern "C" vp_codec_status vp_codec_preprocess(const uint8_t *data, size_t length, const vp_preprocess_spec *spec,
                                               float *output, size_t output_count, vp_preprocess_report *report,
                                               char *message, size_t capacity) {
    silenceOpenCVLogging();
    *report = vp_preprocess_report{};
    if (spec->crop_width <= 0 || spec->crop_height <= 0 || spec->resize_short_side < std::max(spec->crop_width, spec->crop_height)) {
        return fail(message, capacity, VP_CODEC_INVALID_ARGUMENT, "resize target %d is smaller than the %dx%d crop",
                    spec->resize_short_side, spec->crop_width, spec->crop_height);
    }
    if (output_count != size_t(3) * spec->crop_width * spec->crop_height) {
        return fail(message, capacity, VP_CODEC_INVALID_ARGUMENT, "output holds %zu floats; the crop needs %zu", output_count,
                    size_t(3) * spec->crop_width * spec->crop_height);
    }
    const vp_codec_status probed = vp_codec_probe(data, length, &report->info, message, capacity);
    if (probed != VP_CODEC_OK) return probed;
    const vp_image_info &info = report->info;
    if (info.width <= 0 || info.height <= 0) {
        return fail(message, capacity, VP_CODEC_CORRUPT, "the header gives an empty size %dx%d", info.width, info.height);
    }
    const vp_codec_status limited = checkLimits(info.width, info.height, *spec, message, capacity);
    if (limited != VP_CODEC_OK) return limited;
    if (length > size_t(INT_MAX)) return fail(message, capacity, VP_CODEC_TOO_LARGE, "the encoded image is over 2 GiB");
    try {
        auto start = std::chrono::steady_clock::now();
        report->dct_scale = (info.format == VP_FORMAT_JPEG && spec->allow_dct_reduction) ? dctScale(info, spec->resize_short_side) : 1;
        Decoded decoded;
        if (info.format == VP_FORMAT_JPEG) {
            const vp_codec_status status =
                decodeJPEG(data, length, report->dct_scale, spec->allow_crop_decoding != 0, *spec, decoded, message, capacity);
            if (status != VP_CODEC_OK) return status;
        }
        if (decoded.pixels.empty()) {
            const cv::Mat encoded(1, int(length), CV_8U, const_cast<uint8_t *>(data));
            decoded.pixels = cv::imdecode(encoded, decodeFlags(report->dct_scale));
            decoded.width = decoded.pixels.cols;
            decoded.height = decoded.pixels.rows;
        }
        report->decode_seconds = secondsSince(start);
        if (decoded.pixels.empty()) return fail(message, capacity, VP_CODEC_CORRUPT, "the image data is corrupt: the decoder rejected it");
        // The decoder, not the probe, has the last word on size: check again before resizing.
        const vp_codec_status decodedLimits = checkLimits(decoded.width, decoded.height, *spec, message, capacity);
        if (decodedLimits != VP_CODEC_OK) return decodedLimits;
        report->decoded_width = decoded.width;
        report->decoded_height = decoded.height;
        report->decoded_pixels = decoded.pixels.cols * decoded.pixels.rows;

        start = std::chrono::steady_clock::now();
        resizeCropNormalize(decoded, *spec, output);
        report->preprocess_seconds = secondsSince(start);
        return VP_CODEC_OK;
    } catch (const cv::Exception &error) {
        return fail(message, capacity, VP_CODEC_CORRUPT, "the decoder failed: %s", error.err.c_str());
    } catch (const std::bad_alloc &) {
        return fail(message, capacity, VP_CODEC_INTERNAL, "out of memory while decoding a %dx%d image", info.width, info.height);
    } catch (const std::exception &error) {
        return fail(message, capacity, VP_CODEC_INTERNAL, "decoding failed: %s", error.what());
    }
}
