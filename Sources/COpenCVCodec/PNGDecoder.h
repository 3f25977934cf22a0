// PNG decoding straight to 8-bit RGB with libspng, for ImageCodec.cpp (not seen by Swift).
#ifndef VP_PNG_DECODER_H
#define VP_PNG_DECODER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VP_PNG_OK = 0,
    VP_PNG_CORRUPT = 1,   ///< libspng refused the data (message says why)
    VP_PNG_TOO_LARGE = 2, ///< over the caller's size limit, or a chunk over the memory limits
    VP_PNG_INTERNAL = 3,  ///< out of memory
} vp_png_status;

typedef struct vp_png_decoder vp_png_decoder;

/// Reads the header of `data` (which must outlive the decoder). Images wider or taller than
/// `max_side` and chunks beyond libspng's limits set here are refused before any pixel is
/// inflated. `*width` and `*height` get the image's size.
vp_png_status vp_png_open(const uint8_t *data, size_t length, uint32_t max_side, vp_png_decoder **decoder, int32_t *width,
                          int32_t *height, char *message, size_t capacity);

/// Decodes the image into `pixels` as packed 8-bit RGB rows (`width * 3` bytes apart, `size`
/// bytes in all): grey replicated, palettes expanded, alpha and transparency dropped, 16-bit
/// samples reduced to their high byte, no gamma applied, as OpenCV's libpng reader does.
vp_png_status vp_png_read_rgb(vp_png_decoder *decoder, uint8_t *pixels, size_t size, char *message, size_t capacity);

void vp_png_close(vp_png_decoder *decoder);

#ifdef __cplusplus
}
#endif

#endif
