// The NVIDIA driver API and CUDA runtime entries visionpool calls, looked up with dlsym. Their
// signatures are NVIDIA's documented ones (CUresult and cudaError_t are ints; CUdevice is an
// int ordinal); nothing here includes a CUDA header.
#define _GNU_SOURCE
#include "CCuda.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VP_CUDA_DEFAULT_ROOT
#define VP_CUDA_DEFAULT_ROOT ".venv/cuda"
#endif

enum { VP_CUDA_SUCCESS = 0 };

const char *vp_cuda_default_root(void) { return VP_CUDA_DEFAULT_ROOT; }

static struct {
    void *library;
    int (*cuInit)(unsigned int flags);
    int (*cuDriverGetVersion)(int *version);
    int (*cuDeviceGetCount)(int *count);
    int (*cuDeviceGet)(int *device, int ordinal);
    int (*cuDeviceGetName)(char *name, int length, int device);
    int (*cuDeviceTotalMem_v2)(size_t *bytes, int device);
    int (*cuGetErrorName)(int result, const char **name);
} driver;

static struct {
    int (*cudaHostRegister)(void *pointer, size_t bytes, unsigned int flags);
    int (*cudaHostUnregister)(void *pointer);
    const char *(*cudaGetErrorString)(int error);
} runtime;

/// `cudaHostRegisterPortable`: the pinning is seen by every CUDA context, not just the current one.
enum { VP_CUDA_HOST_REGISTER_PORTABLE = 1 };

static const char *driver_error(int result) {
    const char *name = NULL;
    if (driver.cuGetErrorName == NULL || driver.cuGetErrorName(result, &name) != VP_CUDA_SUCCESS || name == NULL) return "an unknown error";
    return name;
}

static int load_driver(char *message, size_t capacity) {
    if (driver.library != NULL) return 0;
    void *library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (library == NULL) {
        snprintf(message, capacity, "no NVIDIA driver: libcuda.so.1 cannot be loaded (%s); CUDA needs an NVIDIA GPU with driver 580 or newer", dlerror());
        return -1;
    }
#define VP_CUDA_FIND(name)                                                                                          \
    *(void **)&driver.name = dlsym(library, #name);                                                                \
    if (driver.name == NULL) {                                                                                     \
        snprintf(message, capacity, "the NVIDIA driver's libcuda.so.1 has no %s: it is too old for CUDA 13 (driver 580 or newer)", #name); \
        return -1;                                                                                                 \
    }
    VP_CUDA_FIND(cuInit)
    VP_CUDA_FIND(cuDriverGetVersion)
    VP_CUDA_FIND(cuDeviceGetCount)
    VP_CUDA_FIND(cuDeviceGet)
    VP_CUDA_FIND(cuDeviceGetName)
    VP_CUDA_FIND(cuDeviceTotalMem_v2)
    VP_CUDA_FIND(cuGetErrorName)
#undef VP_CUDA_FIND
    driver.library = library;
    return 0;
}

int vp_cuda_driver_probe(vp_cuda_driver_info *out, char *message, size_t capacity) {
    if (load_driver(message, capacity) != 0) return -1;
    int result = driver.cuDriverGetVersion(&out->driver_version);
    if (result != VP_CUDA_SUCCESS) {
        snprintf(message, capacity, "the NVIDIA driver does not say which CUDA it supports (cuDriverGetVersion: %s)", driver_error(result));
        return -1;
    }
    result = driver.cuInit(0);
    if (result != VP_CUDA_SUCCESS) {
        snprintf(message, capacity, "the NVIDIA driver cannot start (cuInit: %s): no usable GPU on this machine", driver_error(result));
        return -1;
    }
    result = driver.cuDeviceGetCount(&out->device_count);
    if (result != VP_CUDA_SUCCESS) {
        snprintf(message, capacity, "the NVIDIA driver cannot count GPUs (cuDeviceGetCount: %s)", driver_error(result));
        return -1;
    }
    return 0;
}

int vp_cuda_device_describe(int ordinal, char *name, size_t name_capacity, size_t *total_bytes, char *message, size_t capacity) {
    if (load_driver(message, capacity) != 0) return -1;
    int device = 0;
    int result = driver.cuDeviceGet(&device, ordinal);
    if (result == VP_CUDA_SUCCESS) result = driver.cuDeviceGetName(name, (int)name_capacity, device);
    if (result == VP_CUDA_SUCCESS) result = driver.cuDeviceTotalMem_v2(total_bytes, device);
    if (result != VP_CUDA_SUCCESS) {
        snprintf(message, capacity, "cannot describe GPU %d: %s", ordinal, driver_error(result));
        return -1;
    }
    return 0;
}

/// The libraries ONNX Runtime's CUDA provider needs, and theirs. A folder may hold more (a
/// machine's Python can carry NCCL, NVSHMEM, cuFile…), whose start-up code has no business here.
static const char *const wanted_prefixes[] = {"libcudart.so", "libcublas", "libcurand.so", "libcufft.so", "libnvrtc", "libnvJitLink.so", "libcudnn"};

static int is_wanted_library(const char *name) {
    if (strstr(name, ".so") == NULL) return 0;
    for (size_t i = 0; i < sizeof(wanted_prefixes) / sizeof(wanted_prefixes[0]); i++) {
        if (strncmp(name, wanted_prefixes[i], strlen(wanted_prefixes[i])) == 0) return 1;
    }
    return 0;
}

int vp_cuda_preload_folder(const char *folder, const char *required, char *message, size_t capacity) {
    DIR *directory = opendir(folder);
    if (directory == NULL) {
        snprintf(message, capacity, "the CUDA libraries are not installed: there is no folder %s (run tools/setup.sh --cuda)", folder);
        return -1;
    }
    char *pending[256];
    size_t count = 0;
    int found_required = 0;
    for (struct dirent *entry = readdir(directory); entry != NULL && count < 256; entry = readdir(directory)) {
        if (!is_wanted_library(entry->d_name)) continue;
        if (strcmp(entry->d_name, required) == 0) found_required = 1;
        size_t length = strlen(folder) + strlen(entry->d_name) + 2;
        pending[count] = malloc(length);
        snprintf(pending[count++], length, "%s/%s", folder, entry->d_name);
    }
    closedir(directory);
    int result = 0;
    if (!found_required) {
        snprintf(message, capacity, "the CUDA libraries are not installed: %s has no %s (run tools/setup.sh --cuda)", folder, required);
        result = -1;
    }
    // Load in rounds: a library whose dependencies are not loaded yet fails now and loads in a
    // later round, once they are; a round that loads nothing ends it.
    for (int progress = 1; result == 0 && progress && count > 0;) {
        progress = 0;
        for (size_t i = 0; i < count;) {
            if (dlopen(pending[i], RTLD_NOW | RTLD_GLOBAL) != NULL) {
                free(pending[i]);
                pending[i] = pending[--count];
                progress = 1;
            } else {
                i++;
            }
        }
    }
    // What is left needs something outside the folder that visionpool does not use (cuFFTW's
    // FFTW, say); only the required library must have loaded.
    for (size_t i = 0; result == 0 && i < count; i++) {
        const char *slash = strrchr(pending[i], '/');
        if (strcmp(slash + 1, required) == 0) {
            dlopen(pending[i], RTLD_NOW | RTLD_GLOBAL);
            snprintf(message, capacity, "cannot load the CUDA library %s: %s", pending[i], dlerror());
            result = -1;
        }
    }
    for (size_t i = 0; i < count; i++) free(pending[i]);
    return result;
}

static int load_runtime(char *message, size_t capacity) {
    if (runtime.cudaHostRegister != NULL) return 0;
    // Already loaded by vp_cuda_preload_folder: RTLD_NOLOAD finds it by its name without searching.
    void *library = dlopen("libcudart.so.13", RTLD_NOW | RTLD_NOLOAD);
    if (library == NULL) {
        snprintf(message, capacity, "the CUDA runtime libcudart.so.13 is not loaded (run tools/setup.sh --cuda)");
        return -1;
    }
    *(void **)&runtime.cudaHostUnregister = dlsym(library, "cudaHostUnregister");
    *(void **)&runtime.cudaGetErrorString = dlsym(library, "cudaGetErrorString");
    *(void **)&runtime.cudaHostRegister = dlsym(library, "cudaHostRegister");
    if (runtime.cudaHostRegister == NULL || runtime.cudaHostUnregister == NULL || runtime.cudaGetErrorString == NULL) {
        runtime.cudaHostRegister = NULL;
        snprintf(message, capacity, "libcudart.so.13 lacks cudaHostRegister: it is not the CUDA 13 runtime");
        return -1;
    }
    return 0;
}

int vp_cuda_host_register(void *pointer, size_t bytes, char *message, size_t capacity) {
    if (load_runtime(message, capacity) != 0) return -1;
    int result = runtime.cudaHostRegister(pointer, bytes, VP_CUDA_HOST_REGISTER_PORTABLE);
    if (result != VP_CUDA_SUCCESS) {
        snprintf(message, capacity, "cannot pin %zu bytes of shared memory for the GPU (cudaHostRegister: %s)", bytes, runtime.cudaGetErrorString(result));
        return -1;
    }
    return 0;
}

int vp_cuda_host_unregister(void *pointer, char *message, size_t capacity) {
    if (load_runtime(message, capacity) != 0) return -1;
    int result = runtime.cudaHostUnregister(pointer);
    if (result != VP_CUDA_SUCCESS) {
        snprintf(message, capacity, "cannot unpin shared memory (cudaHostUnregister: %s)", runtime.cudaGetErrorString(result));
        return -1;
    }
    return 0;
}
