// JPEG decoding with libjpeg-turbo (jpeg_read_header, jpeg_start_decompress, jpeg_read_scanlines)
// into the caller's BGR rows. OpenCV 4.6 decodes to RGB and swaps every pixel to BGR in a
// scalar loop that costs as much as the entropy decoding; libjpeg-turbo's JCS_EXT_BGR output
// writes BGR directly, with the same arithmetic (ISLOW inverse DCT, fancy upsampling) unless
// the caller asks for libjpeg-turbo's faster, less exact options.
#include "JPEGDecoder.h"

// jpeglib.h uses FILE without including stdio.h.
#include <stdio.h>
#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

struct vp_jpeg_decoder {
    struct jpeg_decompress_struct info;
    struct jpeg_error_mgr errors;
    /// libjpeg reports fatal errors by calling error_exit, which must not return: it jumps here.
    jmp_buf failed;
    char reason[JMSG_LENGTH_MAX];
};

static void exit_with_error(j_common_ptr info) {
    vp_jpeg_decoder *decoder = (vp_jpeg_decoder *)info->client_data;
    info->err->format_message(info, decoder->reason);
    longjmp(decoder->failed, 1);
}

/// Warnings (e.g. a corrupt Huffman code in a scan) are not fatal, as in OpenCV; they stay off stderr.
static void ignore_message(j_common_ptr info) { (void)info; }

static vp_jpeg_status corrupt(vp_jpeg_decoder *decoder, char *message, size_t capacity) {
    snprintf(message, capacity, "the JPEG data is corrupt: %s", decoder->reason);
    return VP_JPEG_CORRUPT;
}

vp_jpeg_status vp_jpeg_open(const uint8_t *data, size_t length, int32_t scale, vp_jpeg_options options, vp_jpeg_decoder **result,
                            int32_t *width, int32_t *height, char *message, size_t capacity) {
    *result = NULL;
    vp_jpeg_decoder *decoder = calloc(1, sizeof(vp_jpeg_decoder));
    if (decoder == NULL) {
        snprintf(message, capacity, "out of memory");
        return VP_JPEG_CORRUPT;
    }
    decoder->info.err = jpeg_std_error(&decoder->errors);
    decoder->errors.error_exit = exit_with_error;
    decoder->errors.output_message = ignore_message;
    decoder->info.client_data = decoder;
    if (setjmp(decoder->failed)) {
        vp_jpeg_status status = corrupt(decoder, message, capacity);
        vp_jpeg_close(decoder);
        return status;
    }
    jpeg_create_decompress(&decoder->info);
    jpeg_mem_src(&decoder->info, data, (unsigned long)length);
    jpeg_read_header(&decoder->info, TRUE);
    switch (decoder->info.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
        break;
    default:
        snprintf(message, capacity, "JPEG colour space %d has no direct BGR output", (int)decoder->info.jpeg_color_space);
        vp_jpeg_close(decoder);
        return VP_JPEG_UNSUPPORTED;
    }
    decoder->info.out_color_space = JCS_EXT_BGR;
    decoder->info.scale_num = 1;
    decoder->info.scale_denom = (unsigned int)scale;
    decoder->info.do_fancy_upsampling = options.fast_upsampling ? FALSE : TRUE;
    decoder->info.dct_method = options.fast_idct ? JDCT_IFAST : JDCT_ISLOW;
    jpeg_calc_output_dimensions(&decoder->info);
    *width = (int32_t)decoder->info.output_width;
    *height = (int32_t)decoder->info.output_height;
    *result = decoder;
    return VP_JPEG_OK;
}

vp_jpeg_status vp_jpeg_read(vp_jpeg_decoder *decoder, uint8_t *pixels, size_t stride, char *message, size_t capacity) {
    if (setjmp(decoder->failed)) return corrupt(decoder, message, capacity);
    jpeg_start_decompress(&decoder->info);
    while (decoder->info.output_scanline < decoder->info.output_height) {
        JSAMPROW row = pixels + (size_t)decoder->info.output_scanline * stride;
        jpeg_read_scanlines(&decoder->info, &row, 1);
    }
    jpeg_finish_decompress(&decoder->info);
    return VP_JPEG_OK;
}

vp_jpeg_status vp_jpeg_read_region(vp_jpeg_decoder *decoder, int32_t *x, int32_t *width, int32_t y, int32_t rows, uint8_t *pixels,
                                   size_t stride, char *message, size_t capacity) {
    if (setjmp(decoder->failed)) return corrupt(decoder, message, capacity);
    jpeg_start_decompress(&decoder->info);
    JDIMENSION column = (JDIMENSION)*x, columns = (JDIMENSION)*width;
    if (column > 0 || columns < decoder->info.output_width) jpeg_crop_scanline(&decoder->info, &column, &columns);
    *x = (int32_t)column;
    *width = (int32_t)columns;
    if (y > 0) jpeg_skip_scanlines(&decoder->info, (JDIMENSION)y);
    for (int32_t row = 0; row < rows && decoder->info.output_scanline < decoder->info.output_height; row++) {
        JSAMPROW line = pixels + (size_t)row * stride;
        jpeg_read_scanlines(&decoder->info, &line, 1);
    }
    // The rows below the region are not needed: nothing more is decoded.
    jpeg_abort_decompress(&decoder->info);
    return VP_JPEG_OK;
}

void vp_jpeg_close(vp_jpeg_decoder *decoder) {
    if (decoder == NULL) return;
    jpeg_destroy_decompress(&decoder->info);
    free(decoder);
}

static uint32_t read16(const uint8_t *p, int little) { return little ? (uint32_t)(p[0] | (p[1] << 8)) : (uint32_t)((p[0] << 8) | p[1]); }

static uint32_t read32(const uint8_t *p, int little) {
    return little ? read16(p, 1) | (read16(p + 2, 1) << 16) : (read16(p, 0) << 16) | read16(p + 2, 0);
}

/// The orientation tag (0x0112) of IFD0 in an APP1 "Exif" segment's TIFF structure.
static int32_t orientation_in_exif(const uint8_t *tiff, size_t length) {
    if (length < 8) return 1;
    int little;
    if (memcmp(tiff, "II*\0", 4) == 0) {
        little = 1;
    } else if (memcmp(tiff, "MM\0*", 4) == 0) {
        little = 0;
    } else {
        return 1;
    }
    const size_t directory = read32(tiff + 4, little);
    if (directory > length - 2) return 1;
    const size_t entries = read16(tiff + directory, little);
    for (size_t index = 0; index < entries; index++) {
        const size_t entry = directory + 2 + index * 12;
        if (entry > length - 12) break;
        if (read16(tiff + entry, little) == 0x0112 && read16(tiff + entry + 2, little) == 3) {
            const uint32_t value = read16(tiff + entry + 8, little);
            return value >= 1 && value <= 8 ? (int32_t)value : 1;
        }
    }
    return 1;
}

int32_t vp_jpeg_exif_orientation(const uint8_t *data, size_t length) {
    size_t position = 2;
    while (position + 4 <= length && data[position] == 0xFF) {
        const uint8_t marker = data[position + 1];
        if (marker == 0xDA || marker == 0xD9) break;
        if (marker == 0xFF || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
            position += marker == 0xFF ? 1 : 2;
            continue;
        }
        const size_t segment = read16(data + position + 2, 0);
        if (segment < 2 || position + 2 + segment > length) break;
        const uint8_t *payload = data + position + 4;
        if (marker == 0xE1 && segment >= 8 && memcmp(payload, "Exif\0\0", 6) == 0) {
            return orientation_in_exif(payload + 6, segment - 8);
        }
        position += 2 + segment;
    }
    return 1;
}
