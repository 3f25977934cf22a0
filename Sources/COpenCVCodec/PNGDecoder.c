// PNG decoding with libspng (spng_ctx_new, spng_set_png_buffer, spng_get_ihdr,
// spng_decode_image) into the caller's RGB rows: about a third faster than OpenCV's libpng
// reader, which decodes to BGR through libpng's transforms (docs/PERFORMANCE.md).
#include "PNGDecoder.h"

#include <spng.h>
#include <stdio.h>

/// What libspng may hold of ancillary chunks (text, profiles, decompressed zTXt) for one image:
/// a hostile file's chunks cannot make it allocate more. A chunk's own length is bounded by
/// the data; image data by the size limit.
enum { vp_png_chunk_cache_limit = 8 << 20 };

static vp_png_status refused(int error, const char *what, char *message, size_t capacity) {
    if (error == SPNG_EMEM) {
        snprintf(message, capacity, "out of memory while decoding the PNG");
        return VP_PNG_INTERNAL;
    }
    if (error == SPNG_EWIDTH || error == SPNG_EHEIGHT || error == SPNG_EUSER_WIDTH || error == SPNG_EUSER_HEIGHT ||
        error == SPNG_ECHUNK_LIMITS || error == SPNG_EOVERFLOW) {
        snprintf(message, capacity, "the PNG is too large to decode: %s", spng_strerror(error));
        return VP_PNG_TOO_LARGE;
    }
    snprintf(message, capacity, "the PNG data is corrupt: %s (%s)", spng_strerror(error), what);
    return VP_PNG_CORRUPT;
}

vp_png_status vp_png_open(const uint8_t *data, size_t length, uint32_t max_side, vp_png_decoder **result, int32_t *width,
                          int32_t *height, char *message, size_t capacity) {
    *result = NULL;
    spng_ctx *context = spng_ctx_new(SPNG_CTX_IGNORE_ADLER32);
    if (context == NULL) return refused(SPNG_EMEM, "context", message, capacity);
    int error = spng_set_image_limits(context, max_side, max_side);
    if (!error) error = spng_set_chunk_limits(context, length, vp_png_chunk_cache_limit);
    if (!error) error = spng_set_png_buffer(context, data, length);
    struct spng_ihdr header;
    if (!error) error = spng_get_ihdr(context, &header);
    if (error) {
        vp_png_status status = refused(error, "header", message, capacity);
        spng_ctx_free(context);
        return status;
    }
    *width = (int32_t)header.width;
    *height = (int32_t)header.height;
    *result = (vp_png_decoder *)context;
    return VP_PNG_OK;
}

vp_png_status vp_png_read_rgb(vp_png_decoder *decoder, uint8_t *pixels, size_t size, char *message, size_t capacity) {
    spng_ctx *context = (spng_ctx *)decoder;
    size_t needed = 0;
    int error = spng_decoded_image_size(context, SPNG_FMT_RGB8, &needed);
    if (!error && needed != size) {
        snprintf(message, capacity, "the PNG decodes to %zu bytes, not the %zu expected", needed, size);
        return VP_PNG_CORRUPT;
    }
    if (!error) error = spng_decode_image(context, pixels, size, SPNG_FMT_RGB8, 0);
    return error ? refused(error, "image data", message, capacity) : VP_PNG_OK;
}

void vp_png_close(vp_png_decoder *decoder) { spng_ctx_free((spng_ctx *)decoder); }
