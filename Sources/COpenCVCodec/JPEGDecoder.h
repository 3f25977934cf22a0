// JPEG decoding straight to BGR with libjpeg-turbo, for ImageCodec.cpp (not seen by Swift).
#ifndef VP_JPEG_DECODER_H
#define VP_JPEG_DECODER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VP_JPEG_OK = 0,
    VP_JPEG_CORRUPT = 1,     ///< libjpeg refused the data (message says why)
    VP_JPEG_UNSUPPORTED = 2, ///< a colour space libjpeg-turbo cannot turn into BGR (CMYK, YCCK): decode it another way
} vp_jpeg_status;

typedef struct vp_jpeg_decoder vp_jpeg_decoder;

/// How libjpeg-turbo trades exactness for speed; both off is the exact decode OpenCV's reader does.
typedef struct {
    int32_t fast_upsampling; ///< merged chroma upsampling: each chroma sample covers its 2×1 or 2×2 pixels (do_fancy_upsampling = FALSE)
    int32_t fast_idct;       ///< the fast integer inverse DCT (JDCT_IFAST), less accurate than the default JDCT_ISLOW
} vp_jpeg_options;

/// Reads the header of `data` (which must outlive the decoder) and sets the output scale to
/// 1/`scale` (1, 2, 4 or 8): libjpeg then skips that much of the inverse DCT, as OpenCV's
/// IMREAD_REDUCED_COLOR_* do. `*width` and `*height` get the scaled size, before EXIF orientation.
vp_jpeg_status vp_jpeg_open(const uint8_t *data, size_t length, int32_t scale, vp_jpeg_options options, vp_jpeg_decoder **decoder,
                            int32_t *width, int32_t *height, char *message, size_t capacity);

/// Decodes every row as 8-bit BGR into `pixels` (`stride` bytes apart), as OpenCV's own JPEG
/// reader would after its RGB-to-BGR copy, which this skips: libjpeg-turbo writes BGR itself.
vp_jpeg_status vp_jpeg_read(vp_jpeg_decoder *decoder, uint8_t *pixels, size_t stride, char *message, size_t capacity);

/// Decodes only `rows` rows from row `y` of the columns from `*x` on, `*width` wide, into
/// `pixels` (8-bit BGR, `stride` bytes apart, at least the scaled width wide): libjpeg-turbo
/// skips the inverse DCT, upsampling and colour conversion of every other row and column
/// (`jpeg_crop_scanline`, `jpeg_skip_scanlines`) and stops after the last row. It widens the
/// columns to its iMCU boundaries: `*x` and `*width` come back as decoded. The pixels decoded
/// are the ones a full decode gives in that region.
vp_jpeg_status vp_jpeg_read_region(vp_jpeg_decoder *decoder, int32_t *x, int32_t *width, int32_t y, int32_t rows, uint8_t *pixels,
                                   size_t stride, char *message, size_t capacity);

void vp_jpeg_close(vp_jpeg_decoder *decoder);

/// The EXIF orientation (1–8) in the JPEG's APP1 segment, or 1 when there is none.
int32_t vp_jpeg_exif_orientation(const uint8_t *data, size_t length);

#ifdef __cplusplus
}
#endif

#endif
