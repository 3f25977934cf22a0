/// OpenVINO's C API, wrapped so Swift calls a handful of non-variadic functions that
/// return a status and a message, and never handles OpenVINO's own objects.
#ifndef C_OPENVINO_SHIM_H
#define C_OPENVINO_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VP_OV_MAX_RANK 8

/// Settings fixed when an engine is created.
typedef struct {
    const char *model_path;
    int32_t threads;          ///< intra-op threads (INFERENCE_NUM_THREADS); 0 lets OpenVINO choose
    const char *precision;    ///< INFERENCE_PRECISION_HINT ("f32", "bf16", "f16"); NULL for the device's default
    const char *cache_dir;    ///< compiled-model cache (CACHE_DIR); NULL for none
} vp_ov_options;

/// Names and shapes of a model's first input and first output; -1 marks a dynamic dimension.
typedef struct {
    char input_name[256];
    char output_name[256];
    int32_t input_rank;
    int32_t output_rank;
    int64_t input_shape[VP_OV_MAX_RANK];
    int64_t output_shape[VP_OV_MAX_RANK];
    int32_t input_count;
    int32_t output_count;
} vp_ov_model_io;

typedef struct vp_ov_engine vp_ov_engine;

/// Reads the model (no compilation) and reports its inputs and outputs.
int32_t vp_ov_inspect(const char *model_path, vp_ov_model_io *io, char *message, size_t capacity);

/// Reads the model and compiles it for batch 1 on the CPU.
int32_t vp_ov_engine_create(const vp_ov_options *options, vp_ov_engine **engine, char *message, size_t capacity);

/// Runs `batch` samples from `input` and writes the outputs to `output`. Both buffers stay the
/// caller's: they are bound as host-pointer tensors, so no tensor is copied. A batch size not
/// seen before is compiled on first use.
int32_t vp_ov_engine_infer(vp_ov_engine *engine, int32_t batch, float *input, size_t input_count, float *output,
                           size_t output_count, char *message, size_t capacity);

/// Floats per sample in the input and output.
size_t vp_ov_engine_sample_input_count(const vp_ov_engine *engine);
size_t vp_ov_engine_sample_output_count(const vp_ov_engine *engine);

/// The precision the compiled model actually runs at (e.g. "bf16" when the hint was left to the device).
const char *vp_ov_engine_precision(const vp_ov_engine *engine);

/// The addresses the engine's input and output tensors read and write for `batch`; NULL when not bound yet.
const void *vp_ov_engine_bound_input(const vp_ov_engine *engine, int32_t batch);
const void *vp_ov_engine_bound_output(const vp_ov_engine *engine, int32_t batch);

/// How many of a compiled model's executed convolutions and fully connected layers ran kernels of each
/// precision, and of each instruction-set family (from the exec type's name, e.g. brgconv_avx512_amx_1x1_I8).
typedef struct {
    int32_t int8;   ///< u8/i8 kernels: the model's quantization was kept
    int32_t bf16;
    int32_t f16;
    int32_t f32;
    int32_t other;
    int32_t amx;    ///< names with "amx": Sapphire Rapids' tile kernels
    int32_t avx512; ///< names with "avx512" and not "amx"
    int32_t avx2;
    int32_t sse41;
    int32_t mlas;   ///< OpenVINO's MLAS GEMM, which picks its instructions itself (ONEDNN_MAX_CPU_ISA does not reach it)
    int32_t unnamed_isa; ///< reference kernels and names that say no instruction set
} vp_ov_kernel_census;

_Static_assert(sizeof(vp_ov_kernel_census) == 11 * sizeof(int32_t), "the census is eleven counters");

/// Compiles the model once more at batch 1 with profiling on (ENABLE_PROFILING), runs it on
/// zeros and reads each layer's exec type (`ov_infer_request_get_profiling_info`), so callers
/// learn which kernels OpenVINO chose, e.g. whether a bf16 default kept an int8 model's int8 kernels.
int32_t vp_ov_engine_kernel_census(vp_ov_engine *engine, vp_ov_kernel_census *census, char *message, size_t capacity);

void vp_ov_engine_destroy(vp_ov_engine *engine);

/// The precision OpenVINO's CPU plugin picks for this machine when none is asked for (its
/// INFERENCE_PRECISION_HINT default: "bf16" on CPUs with AVX512_BF16 or AMX, else "f32"), written
/// into `precision`; it reads the real CPU, even under ONEDNN_MAX_CPU_ISA.
int32_t vp_ov_default_precision(char *precision, size_t precision_capacity, char *message, size_t capacity);

/// The OpenVINO runtime's version string, e.g. "2026.4.1-…".
const char *vp_ov_version(void);

#ifdef __cplusplus
}
#endif

#endif
