#ifndef COPENCVCANVAS_H
#define COPENCVCANVAS_H

// A raster canvas over OpenCV's drawing functions, for the benchmark's charts: filled
// rectangles, anti-aliased lines and Hershey text, encoded as PNG. C only: no C++ and
// no exceptions cross this header.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vp_rgb {
    uint8_t red, green, blue;
} vp_rgb;

typedef struct vp_canvas vp_canvas;

/// A width × height canvas filled with `background`; NULL if it cannot be allocated.
vp_canvas *vp_canvas_create(int width, int height, vp_rgb background);
void vp_canvas_destroy(vp_canvas *canvas);

void vp_canvas_fill_rect(vp_canvas *canvas, int x, int y, int width, int height, vp_rgb color);
void vp_canvas_line(vp_canvas *canvas, int x0, int y0, int x1, int y1, vp_rgb color, int thickness);
void vp_canvas_circle(vp_canvas *canvas, int x, int y, int radius, vp_rgb color);

/// Draws `text` (ASCII) with its baseline's left end at (x, y).
void vp_canvas_text(vp_canvas *canvas, const char *text, int x, int y, double scale, vp_rgb color, int thickness);

/// The width in pixels `text` takes at `scale`; its height above the baseline in `*height`.
int vp_canvas_text_width(const char *text, double scale, int thickness, int *height);

/// The canvas as PNG bytes in `*data` (release with `vp_canvas_free_png`); 0 on success,
/// -1 when encoding failed.
int vp_canvas_encode_png(const vp_canvas *canvas, uint8_t **data, size_t *size);
void vp_canvas_free_png(uint8_t *data);

#ifdef __cplusplus
}
#endif

#endif
