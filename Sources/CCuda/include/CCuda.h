/// The few NVIDIA driver and CUDA runtime calls visionpool makes itself, reached through
/// `dlopen` so that a machine without a GPU builds and runs everything else. Functions are
/// declared in this project's words (`Cuda.c`); each failure comes back as one line naming
/// what is missing.
#ifndef C_CUDA_H
#define C_CUDA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Where `tools/setup.sh --cuda` installed ONNX Runtime's GPU build and the CUDA libraries.
const char *vp_cuda_default_root(void);

/// What the driver (`libcuda.so.1`) says about this machine.
typedef struct {
    /// CUDA version the driver supports, as 1000 × major + 10 × minor (13000 is CUDA 13.0).
    int driver_version;
    int device_count;
} vp_cuda_driver_info;

/// Loads the driver, initialises it (`cuInit`) and counts the GPUs (`cuDeviceGetCount`);
/// -1 with the reason when there is no driver or it finds no GPU.
int vp_cuda_driver_probe(vp_cuda_driver_info *out, char *message, size_t capacity);

/// GPU `device`'s name and memory (`cuDeviceGetName`, `cuDeviceTotalMem_v2`), after a probe.
int vp_cuda_device_describe(int device, char *name, size_t name_capacity, size_t *total_bytes, char *message, size_t capacity);

/// Loads the CUDA libraries ONNX Runtime's CUDA provider uses (cudart, cuBLAS, cuRAND, cuFFT,
/// NVRTC, nvJitLink, cuDNN) found in `folder` with `RTLD_GLOBAL`, retrying those whose own
/// dependencies were not loaded yet until none makes progress, so that the CUDA libraries
/// set-up installed are found by their names (glibc matches loaded libraries by soname)
/// without `LD_LIBRARY_PATH`. Fails when the folder is missing, or its `required` library (a
/// file name) is absent or cannot load, naming it; others that cannot load are left.
int vp_cuda_preload_folder(const char *folder, const char *required, char *message, size_t capacity);

/// Page-locks host memory for DMA by the GPU (`cudaHostRegister`, portable to every context)
/// and undoes it (`cudaHostUnregister`). The runtime (`libcudart.so.13`) must already be
/// loaded, by `vp_cuda_preload_folder`.
int vp_cuda_host_register(void *pointer, size_t bytes, char *message, size_t capacity);
int vp_cuda_host_unregister(void *pointer, char *message, size_t capacity);

#ifdef __cplusplus
}
#endif

#endif
