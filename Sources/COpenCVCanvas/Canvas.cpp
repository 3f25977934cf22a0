#include "COpenCVCanvas.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

struct vp_canvas {
    cv::Mat pixels;
};

namespace {

constexpr int font = cv::FONT_HERSHEY_SIMPLEX;

cv::Scalar bgr(vp_rgb color) { return cv::Scalar(color.blue, color.green, color.red); }

}  // namespace

extern "C" vp_canvas *vp_canvas_create(int width, int height, vp_rgb background) {
    if (width <= 0 || height <= 0) return nullptr;
    try {
        auto canvas = new vp_canvas;
        canvas->pixels = cv::Mat(height, width, CV_8UC3, bgr(background));
        return canvas;
    } catch (...) {
        return nullptr;
    }
}

extern "C" void vp_canvas_destroy(vp_canvas *canvas) { delete canvas; }

extern "C" void vp_canvas_fill_rect(vp_canvas *canvas, int x, int y, int width, int height, vp_rgb color) {
    if (width <= 0 || height <= 0) return;
    cv::rectangle(canvas->pixels, cv::Rect(x, y, width, height), bgr(color), cv::FILLED);
}

extern "C" void vp_canvas_line(vp_canvas *canvas, int x0, int y0, int x1, int y1, vp_rgb color, int thickness) {
    cv::line(canvas->pixels, cv::Point(x0, y0), cv::Point(x1, y1), bgr(color), thickness, cv::LINE_AA);
}

extern "C" void vp_canvas_circle(vp_canvas *canvas, int x, int y, int radius, vp_rgb color) {
    cv::circle(canvas->pixels, cv::Point(x, y), radius, bgr(color), cv::FILLED, cv::LINE_AA);
}

extern "C" void vp_canvas_text(vp_canvas *canvas, const char *text, int x, int y, double scale, vp_rgb color, int thickness) {
    cv::putText(canvas->pixels, text, cv::Point(x, y), font, scale, bgr(color), thickness, cv::LINE_AA);
}

extern "C" int vp_canvas_text_width(const char *text, double scale, int thickness, int *height) {
    int baseline = 0;
    cv::Size size = cv::getTextSize(text, font, scale, thickness, &baseline);
    if (height) *height = size.height;
    return size.width;
}

extern "C" int vp_canvas_encode_png(const vp_canvas *canvas, uint8_t **data, size_t *size) {
    try {
        std::vector<uint8_t> encoded;
        if (!cv::imencode(".png", canvas->pixels, encoded)) return -1;
        auto *copy = static_cast<uint8_t *>(std::malloc(encoded.size()));
        if (!copy) return -1;
        std::memcpy(copy, encoded.data(), encoded.size());
        *data = copy;
        *size = encoded.size();
        return 0;
    } catch (...) {
        return -1;
    }
}

extern "C" void vp_canvas_free_png(uint8_t *data) { std::free(data); }
