/// ONNX Runtime's C API, reached without its headers: the library is `dlopen`ed, and the few
/// entries visionpool calls are read from its function table at their documented positions
/// (`OnnxRuntime.c` lists each with its name, position and the API version it appeared in).
/// Loading checks the library answers as that table says before anything else is called.
#ifndef C_ONNX_RUNTIME_H
#define C_ONNX_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The loaded library's version, e.g. "1.31.1".
const char *vp_ort_version(void);

typedef struct vp_ort_engine vp_ort_engine;

typedef struct {
    const char *model_path;
    /// Intra-op threads; inter-op is 1 (sequential execution).
    int threads;
    /// Whether idle intra-op threads spin waiting for work (ONNX Runtime's default) or sleep.
    int allow_spinning;
} vp_ort_options;

/// A session for the model, or -1 with the reason. The library is loaded and checked by the
/// first call, once per process: `$VISIONPOOL_ONNXRUNTIME_LIBRARY`, else the one set-up
/// installed; a failure names the library and its version, and every later call repeats it.
int vp_ort_engine_create(const vp_ort_options *options, vp_ort_engine **out, char *message, size_t capacity);
void vp_ort_engine_destroy(vp_ort_engine *engine);

/// The first input's and output's shapes as the model declares them (-1: dynamic).
/// Returns the rank, or -1 when `capacity` is too small.
int vp_ort_engine_input_shape(const vp_ort_engine *engine, int64_t *dims, size_t capacity);
int vp_ort_engine_output_shape(const vp_ort_engine *engine, int64_t *dims, size_t capacity);

/// Runs the model on `input` (float32, `input_shape`) and writes its output into `output`
/// (float32, `output_shape`): both are wrapped as tensors in place, never copied.
int vp_ort_engine_infer(
    vp_ort_engine *engine, float *input, const int64_t *input_shape, size_t input_rank, float *output,
    const int64_t *output_shape, size_t output_rank, char *message, size_t capacity);

/// Where the last run's input and output tensors had their data, as ONNX Runtime reports it.
const void *vp_ort_engine_bound_input(const vp_ort_engine *engine);
const void *vp_ort_engine_bound_output(const vp_ort_engine *engine);

#ifdef __cplusplus
}
#endif

#endif
