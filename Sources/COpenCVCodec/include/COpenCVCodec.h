/// Image decoding and preprocessing over OpenCV, behind a C header: Swift sees no C++,
/// and every C++ exception is caught and returned as a status code with a message.
#ifndef C_OPENCV_CODEC_H
#define C_OPENCV_CODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Outcome of a codec call; anything but `VP_CODEC_OK` comes with a message.
typedef enum {
    VP_CODEC_OK = 0,
    VP_CODEC_EMPTY = 1,              ///< zero bytes
    VP_CODEC_UNSUPPORTED_FORMAT = 2, ///< not a format we decode (signature unknown)
    VP_CODEC_TRUNCATED = 3,          ///< the data ends before the image does
    VP_CODEC_CORRUPT = 4,            ///< header or data that the decoder rejects
    VP_CODEC_TOO_LARGE = 5,          ///< the header claims more pixels than allowed
    VP_CODEC_INVALID_ARGUMENT = 6,   ///< a spec or buffer the caller got wrong
    VP_CODEC_INTERNAL = 7,           ///< an OpenCV failure unrelated to the input
} vp_codec_status;

/// Formats recognised by their signature.
typedef enum {
    VP_FORMAT_UNKNOWN = 0,
    VP_FORMAT_JPEG = 1,
    VP_FORMAT_PNG = 2,
    VP_FORMAT_BMP = 3,
    VP_FORMAT_WEBP = 4,
    VP_FORMAT_TIFF = 5,
    VP_FORMAT_GIF = 6, ///< recognised so it can be refused by name: OpenCV 4.6 cannot decode it
} vp_image_format;

/// What the header says, read without decoding any pixel.
typedef struct {
    int32_t format;  ///< a `vp_image_format`
    int32_t width;   ///< as stored, before EXIF orientation
    int32_t height;
} vp_image_info;

/// How to turn an image into a model input (one image, NCHW float32).
typedef struct {
    int32_t resize_short_side; ///< the short side is resized to this first
    int32_t crop_width;        ///< then a centred crop of this size
    int32_t crop_height;
    float mean[3];             ///< per model channel, in pixel units (0...255)
    float std[3];
    int32_t channels_bgr;      ///< 0: the model takes RGB; 1: BGR
    int32_t allow_dct_reduction; ///< decode large JPEGs at 1/2, 1/4 or 1/8 scale
    int32_t allow_crop_decoding; ///< decode only the JPEG rows and columns the centre crop reads
    int32_t jpeg_fast_upsampling; ///< libjpeg-turbo's merged chroma upsampling (do_fancy_upsampling off)
    int32_t jpeg_fast_idct;       ///< libjpeg-turbo's fast integer inverse DCT (JDCT_IFAST) instead of the accurate one
    int64_t max_pixels;        ///< images whose header claims more are refused before decoding
} vp_preprocess_spec;

/// What a preprocess call did and how long each stage took.
typedef struct {
    vp_image_info info;
    int32_t dct_scale;      ///< 1, 2, 4 or 8
    int32_t decoded_width;  ///< after DCT reduction and EXIF orientation
    int32_t decoded_height;
    int32_t decoded_pixels; ///< pixels the decoder produced: fewer than width × height when it decoded only the crop's region
    double decode_seconds;
    double preprocess_seconds; ///< resize, crop and normalize: one pass into the tensor
} vp_preprocess_report;

/// Reads the format and dimensions from the header only.
vp_codec_status vp_codec_probe(const uint8_t *data, size_t length, vp_image_info *info,
                               char *message, size_t message_capacity);

/// Bytes `vp_codec_preprocess` may hold while it turns an image with this header into a tensor
/// (the decoded image at its DCT scale, an oriented copy, a resized image's worth): an upper
/// bound, so that a server can count decoding against its memory budget before it starts.
int64_t vp_codec_working_bytes(const vp_image_info *info, const vp_preprocess_spec *spec);

/// Decodes `data` and writes the normalized NCHW tensor into `output`, which must hold
/// exactly 3 × crop_height × crop_width floats. The resize (bilinear, half-pixel centres, as
/// OpenCV's INTER_LINEAR), the centre crop and the normalization are one pass that computes
/// only the crop's pixels and writes them straight into `output`.
vp_codec_status vp_codec_preprocess(const uint8_t *data, size_t length, const vp_preprocess_spec *spec,
                                    float *output, size_t output_count, vp_preprocess_report *report,
                                    char *message, size_t message_capacity);

#ifdef __cplusplus
}
#endif

#endif
