// OpenCV dnn: the second engine, on OpenCV's own CPU backend.
#include "COpenCVDNN.h"

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/dnn.hpp>

#include <cstdio>
#include <cstring>

struct vp_cvdnn_net {
    cv::dnn::Net net;
};

namespace {

int32_t fail(char *message, size_t capacity, const char *what, const char *detail) {
    if (message != nullptr && capacity > 0) std::snprintf(message, capacity, "%s: %s", what, detail);
    return -1;
}

} // namespace

extern "C" int32_t vp_cvdnn_create(const char *model_path, int32_t threads, vp_cvdnn_net **result, char *message, size_t capacity) {
    try {
        cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
        if (threads > 0) cv::setNumThreads(threads);
        auto *holder = new vp_cvdnn_net{cv::dnn::readNetFromONNX(model_path)};
        holder->net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
        holder->net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
        *result = holder;
        return 0;
    } catch (const cv::Exception &error) {
        return fail(message, capacity, "OpenCV cannot load the model", error.err.c_str());
    } catch (const std::exception &error) {
        return fail(message, capacity, "OpenCV cannot load the model", error.what());
    }
}

extern "C" int32_t vp_cvdnn_infer(vp_cvdnn_net *holder, const float *input, int32_t batch, int32_t channels, int32_t height,
                                  int32_t width, float *output, size_t output_count, char *message, size_t capacity) {
    try {
        const int sizes[4] = {batch, channels, height, width};
        const cv::Mat blob(4, sizes, CV_32F, const_cast<float *>(input));
        holder->net.setInput(blob);
        const cv::Mat scores = holder->net.forward();
        if (scores.total() != output_count || !scores.isContinuous()) {
            char detail[96];
            std::snprintf(detail, sizeof(detail), "the model gave %zu scores; %zu were expected", scores.total(), output_count);
            return fail(message, capacity, "inference failed", detail);
        }
        std::memcpy(output, scores.ptr<float>(), output_count * sizeof(float));
        return 0;
    } catch (const cv::Exception &error) {
        return fail(message, capacity, "inference failed", error.err.c_str());
    } catch (const std::exception &error) {
        return fail(message, capacity, "inference failed", error.what());
    }
}

extern "C" void vp_cvdnn_destroy(vp_cvdnn_net *holder) { delete holder; }

extern "C" const char *vp_cvdnn_version(void) { return CV_VERSION; }
