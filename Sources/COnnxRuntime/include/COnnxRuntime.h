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
    /// The library to load: NULL for `$VISIONPOOL_ONNXRUNTIME_LIBRARY`, else the CPU build
    /// set-up installed. One library per process: the first engine's choice holds.
    const char *library_path;
    const char *model_path;
    /// Intra-op threads; inter-op is 1 (sequential execution).
    int threads;
    /// Whether idle intra-op threads spin waiting for work (ONNX Runtime's default) or sleep.
    int allow_spinning;
    /// Where ONNX Runtime's profiler writes its JSON trace (a path prefix; NULL: no profiling).
    /// `vp_ort_engine_end_profiling` stops it and names the file.
    const char *profile_prefix;
    /// The CUDA device to run on through the CUDA execution provider, with the options of
    /// `vp_ort_cuda_options`, or -1 for the CPU.
    int cuda_device;
} vp_ort_options;

/// The CUDA execution provider's options visionpool sets (`UpdateCUDAProviderOptions`), besides
/// `device_id`: cuDNN's exhaustive convolution search, which each batch size pays once at
/// warm-up since shapes are static; the largest cuDNN workspace; copies on the compute stream,
/// so a batch's copies and kernels stay in order. Returns how many; the arrays are static.
size_t vp_ort_cuda_options(const char *const **keys, const char *const **values);

/// A session for the model, or -1 with the reason. The library is loaded and checked by the
/// first call, once per process; a failure names the library and its version, and every later
/// call repeats it.
int vp_ort_engine_create(const vp_ort_options *options, vp_ort_engine **out, char *message, size_t capacity);
void vp_ort_engine_destroy(vp_ort_engine *engine);

/// The first input's and output's shapes as the model declares them (-1: dynamic).
/// Returns the rank, or -1 when `capacity` is too small.
int vp_ort_engine_input_shape(const vp_ort_engine *engine, int64_t *dims, size_t capacity);
int vp_ort_engine_output_shape(const vp_ort_engine *engine, int64_t *dims, size_t capacity);

/// The CUDA provider's options as ONNX Runtime holds them after the session took them
/// (`GetCUDAProviderOptionsAsString`, "key=value;…"); empty on the CPU.
const char *vp_ort_engine_provider_options(const vp_ort_engine *engine);

/// Runs the model on `input` (float32, `input_shape`) and writes its output into `output`
/// (float32, `output_shape`): both are wrapped as tensors in place and bound to the session
/// (`BindInput`, `BindOutput`, `RunWithBinding`). On the CPU the kernels read and write them
/// directly; on CUDA, ONNX Runtime copies the input to the GPU from there and the scores back
/// into `output`, so pinned memory makes both copies DMA.
int vp_ort_engine_infer(
    vp_ort_engine *engine, float *input, const int64_t *input_shape, size_t input_rank, float *output,
    const int64_t *output_shape, size_t output_rank, char *message, size_t capacity);

/// Stops the profiler a session was created with and writes the path of its JSON trace
/// (`SessionEndProfiling`) into `path`; -1 with the reason.
int vp_ort_engine_end_profiling(vp_ort_engine *engine, char *path, size_t path_capacity, char *message, size_t capacity);

/// Where the last run's input and output tensors had their data, as ONNX Runtime reports it.
const void *vp_ort_engine_bound_input(const vp_ort_engine *engine);
const void *vp_ort_engine_bound_output(const vp_ort_engine *engine);

#ifdef __cplusplus
}
#endif

#endif
