/// OpenCV's dnn module behind a C header: every cv::Exception becomes a status and a message.
#ifndef C_OPENCV_DNN_H
#define C_OPENCV_DNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vp_cvdnn_net vp_cvdnn_net;

/// Loads an ONNX model for OpenCV's own CPU backend, with `threads` threads (process-wide in OpenCV).
int32_t vp_cvdnn_create(const char *model_path, int32_t threads, vp_cvdnn_net **net, char *message, size_t capacity);

/// Runs `batch` NCHW samples of `channels`×`height`×`width` read in place from `input`; the
/// scores are copied into `output` (OpenCV owns its output blob), which must hold exactly
/// `output_count` floats.
int32_t vp_cvdnn_infer(vp_cvdnn_net *net, const float *input, int32_t batch, int32_t channels, int32_t height,
                       int32_t width, float *output, size_t output_count, char *message, size_t capacity);

void vp_cvdnn_destroy(vp_cvdnn_net *net);

/// OpenCV's version string, e.g. "4.6.0".
const char *vp_cvdnn_version(void);

#ifdef __cplusplus
}
#endif

#endif
