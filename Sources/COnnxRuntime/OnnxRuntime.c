// ONNX Runtime through its C function table, declared here in this project's own words.
//
// ONNX Runtime's C API is one struct of function pointers (`OrtApi`) returned by
// `OrtGetApiBase()->GetApi(version)`. The table is append-only: entries are never removed or
// reordered, so an entry's position is fixed from the version it appeared in. visionpool asks
// for the table of `VP_ORT_API_VERSION` and reads only the entries below, each at its
// position, cast to its documented signature.
#define _GNU_SOURCE
#include "COnnxRuntime.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VP_ORT_DEFAULT_LIBRARY
#define VP_ORT_DEFAULT_LIBRARY "libonnxruntime.so.1"
#endif

/// The table version asked for: the newest entry used (GetBuildInfoString) appeared in it.
#define VP_ORT_API_VERSION 15u

typedef struct OrtStatus OrtStatus;
typedef struct OrtEnv OrtEnv;
typedef struct OrtSession OrtSession;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtMemoryInfo OrtMemoryInfo;
typedef struct OrtValue OrtValue;
typedef struct OrtTypeInfo OrtTypeInfo;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtAllocator OrtAllocator;
typedef struct OrtRunOptions OrtRunOptions;
typedef struct OrtIoBinding OrtIoBinding;
typedef struct OrtCUDAProviderOptionsV2 OrtCUDAProviderOptionsV2;

/// `OrtApiBase`: the first thing the library hands out.
typedef struct {
    const void *(*GetApi)(uint32_t version);
    const char *(*GetVersionString)(void);
} vp_ort_api_base;

// Enum values of the C API, as documented.
enum { VP_ORT_LOGGING_WARNING = 2 };
enum { VP_ORT_SEQUENTIAL = 0 };
enum { VP_ORT_ENABLE_ALL = 99 };
enum { VP_ORT_ARENA_ALLOCATOR = 1, VP_ORT_MEM_TYPE_DEFAULT = 0 };
enum { VP_ORT_TENSOR_FLOAT = 1 };

// Each entry: its name, its position in the table, the API version it appeared in, and its signature.
#define VP_ORT_ENTRIES(X) \
    X(GetErrorMessage, 2, 1, const char *, (const OrtStatus *status)) \
    X(CreateEnv, 3, 1, OrtStatus *, (int level, const char *log_id, OrtEnv **out)) \
    X(CreateSession, 7, 1, OrtStatus *, (const OrtEnv *env, const char *path, const OrtSessionOptions *options, OrtSession **out)) \
    X(Run, 9, 1, OrtStatus *, (OrtSession *session, const OrtRunOptions *run_options, const char *const *input_names, \
                                const OrtValue *const *inputs, size_t input_count, const char *const *output_names, \
                                size_t output_count, OrtValue **outputs)) \
    X(CreateSessionOptions, 10, 1, OrtStatus *, (OrtSessionOptions **out)) \
    X(SetSessionExecutionMode, 13, 1, OrtStatus *, (OrtSessionOptions *options, int mode)) \
    X(EnableProfiling, 14, 1, OrtStatus *, (OrtSessionOptions *options, const char *profile_file_prefix)) \
    X(SetSessionGraphOptimizationLevel, 23, 1, OrtStatus *, (OrtSessionOptions *options, int level)) \
    X(SetIntraOpNumThreads, 24, 1, OrtStatus *, (OrtSessionOptions *options, int threads)) \
    X(SetInterOpNumThreads, 25, 1, OrtStatus *, (OrtSessionOptions *options, int threads)) \
    X(SessionGetInputCount, 30, 1, OrtStatus *, (const OrtSession *session, size_t *out)) \
    X(SessionGetOutputCount, 31, 1, OrtStatus *, (const OrtSession *session, size_t *out)) \
    X(SessionGetInputTypeInfo, 33, 1, OrtStatus *, (const OrtSession *session, size_t index, OrtTypeInfo **out)) \
    X(SessionGetOutputTypeInfo, 34, 1, OrtStatus *, (const OrtSession *session, size_t index, OrtTypeInfo **out)) \
    X(SessionGetInputName, 36, 1, OrtStatus *, (const OrtSession *session, size_t index, OrtAllocator *allocator, char **out)) \
    X(SessionGetOutputName, 37, 1, OrtStatus *, (const OrtSession *session, size_t index, OrtAllocator *allocator, char **out)) \
    X(CreateTensorWithDataAsOrtValue, 49, 1, OrtStatus *, (const OrtMemoryInfo *info, void *data, size_t bytes, const int64_t *shape, \
                                                           size_t rank, int element_type, OrtValue **out)) \
    X(GetTensorMutableData, 51, 1, OrtStatus *, (OrtValue *value, void **out)) \
    X(CastTypeInfoToTensorInfo, 55, 1, OrtStatus *, (const OrtTypeInfo *info, const OrtTensorTypeAndShapeInfo **out)) \
    X(GetDimensionsCount, 61, 1, OrtStatus *, (const OrtTensorTypeAndShapeInfo *info, size_t *out)) \
    X(GetDimensions, 62, 1, OrtStatus *, (const OrtTensorTypeAndShapeInfo *info, int64_t *dims, size_t count)) \
    X(CreateCpuMemoryInfo, 69, 1, OrtStatus *, (int allocator_type, int memory_type, OrtMemoryInfo **out)) \
    X(AllocatorFree, 76, 1, OrtStatus *, (OrtAllocator *allocator, void *pointer)) \
    X(GetAllocatorWithDefaultOptions, 78, 1, OrtStatus *, (OrtAllocator **out)) \
    X(ReleaseEnv, 92, 1, void, (OrtEnv *env)) \
    X(ReleaseStatus, 93, 1, void, (OrtStatus *status)) \
    X(ReleaseMemoryInfo, 94, 1, void, (OrtMemoryInfo *info)) \
    X(ReleaseSession, 95, 1, void, (OrtSession *session)) \
    X(ReleaseValue, 96, 1, void, (OrtValue *value)) \
    X(ReleaseTypeInfo, 98, 1, void, (OrtTypeInfo *info)) \
    X(ReleaseSessionOptions, 100, 1, void, (OrtSessionOptions *options)) \
    X(SessionEndProfiling, 110, 2, OrtStatus *, (OrtSession *session, OrtAllocator *allocator, char **out)) \
    X(AddSessionConfigEntry, 130, 5, OrtStatus *, (OrtSessionOptions *options, const char *key, const char *value)) \
    X(RunWithBinding, 133, 5, OrtStatus *, (OrtSession *session, const OrtRunOptions *run_options, const OrtIoBinding *binding)) \
    X(CreateIoBinding, 134, 5, OrtStatus *, (OrtSession *session, OrtIoBinding **out)) \
    X(ReleaseIoBinding, 135, 5, void, (OrtIoBinding *binding)) \
    X(BindInput, 136, 5, OrtStatus *, (OrtIoBinding *binding, const char *name, const OrtValue *value)) \
    X(BindOutput, 137, 5, OrtStatus *, (OrtIoBinding *binding, const char *name, const OrtValue *value)) \
    X(GetBoundOutputValues, 140, 5, OrtStatus *, (const OrtIoBinding *binding, OrtAllocator *allocator, OrtValue ***out, size_t *count)) \
    X(ClearBoundInputs, 141, 5, void, (OrtIoBinding *binding)) \
    X(ClearBoundOutputs, 142, 5, void, (OrtIoBinding *binding)) \
    X(SynchronizeBoundOutputs, 203, 10, OrtStatus *, (OrtIoBinding *binding)) \
    X(SessionOptionsAppendExecutionProvider_CUDA_V2, 204, 11, OrtStatus *, (OrtSessionOptions *options, const OrtCUDAProviderOptionsV2 *cuda)) \
    X(CreateCUDAProviderOptions, 205, 11, OrtStatus *, (OrtCUDAProviderOptionsV2 **out)) \
    X(UpdateCUDAProviderOptions, 206, 11, OrtStatus *, (OrtCUDAProviderOptionsV2 *cuda, const char *const *keys, const char *const *values, \
                                                        size_t count)) \
    X(GetCUDAProviderOptionsAsString, 207, 11, OrtStatus *, (const OrtCUDAProviderOptionsV2 *cuda, OrtAllocator *allocator, char **out)) \
    X(ReleaseCUDAProviderOptions, 208, 11, void, (OrtCUDAProviderOptionsV2 *cuda)) \
    X(GetBuildInfoString, 254, 15, const char *, (void))

#define VP_ORT_DECLARE(name, position, since, result, parameters) typedef result(*vp_ort_##name##_fn) parameters;
VP_ORT_ENTRIES(VP_ORT_DECLARE)

static struct {
#define VP_ORT_FIELD(name, position, since, result, parameters) vp_ort_##name##_fn name;
    VP_ORT_ENTRIES(VP_ORT_FIELD)
} ort;

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static char loaded_path[4096];
static char load_error[768];
static const char *loaded_version = "";
static OrtEnv *environment;

static void load(const char *path) {
    snprintf(load_error, sizeof(load_error), "ONNX Runtime did not load");
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        snprintf(load_error, sizeof(load_error), "cannot load ONNX Runtime from %s: %s (set VISIONPOOL_ONNXRUNTIME_LIBRARY, or run tools/setup.sh)", path, dlerror());
        return;
    }
    const vp_ort_api_base *(*get_base)(void) = (const vp_ort_api_base *(*)(void))dlsym(library, "OrtGetApiBase");
    const vp_ort_api_base *base = get_base ? get_base() : NULL;
    if (base == NULL) {
        snprintf(load_error, sizeof(load_error), "%s is not ONNX Runtime: it has no OrtGetApiBase", path);
        return;
    }
    loaded_version = base->GetVersionString();
    void *const *table = (void *const *)base->GetApi(VP_ORT_API_VERSION);
    if (table == NULL) {
        snprintf(load_error, sizeof(load_error), "ONNX Runtime %s at %s is older than API version %u, which visionpool needs", loaded_version, path, VP_ORT_API_VERSION);
        return;
    }
#define VP_ORT_READ(name, position, since, result, parameters) ort.name = (vp_ort_##name##_fn)table[position];
    VP_ORT_ENTRIES(VP_ORT_READ)
    // The self-check: every entry must be code of this library, and the latest one used must
    // answer as documented. A table laid out differently fails here, not in a later call.
    Dl_info own, entry;
    if (dladdr((void *)get_base, &own) == 0) {
        snprintf(load_error, sizeof(load_error), "cannot locate ONNX Runtime %s at %s in memory", loaded_version, path);
        return;
    }
#define VP_ORT_CHECK(name, position, since, result, parameters) \
    if (ort.name == NULL || dladdr((void *)ort.name, &entry) == 0 || entry.dli_fbase != own.dli_fbase) { \
        snprintf(load_error, sizeof(load_error), "ONNX Runtime %s at %s has no %s at position %d of its API table", loaded_version, path, #name, position); \
        return; \
    }
    VP_ORT_ENTRIES(VP_ORT_CHECK)
    const char *build = ort.GetBuildInfoString();
    if (build == NULL || strncmp(build, "ORT Build Info", 14) != 0) {
        snprintf(load_error, sizeof(load_error), "ONNX Runtime %s at %s does not answer as its C API table says (GetBuildInfoString at position 254 gave %s)",
                 loaded_version, path, build ? "something else" : "nothing");
        return;
    }
    OrtStatus *status = ort.CreateEnv(VP_ORT_LOGGING_WARNING, "visionpool", &environment);
    if (status != NULL) {
        snprintf(load_error, sizeof(load_error), "ONNX Runtime %s cannot create its environment: %s", loaded_version, ort.GetErrorMessage(status));
        ort.ReleaseStatus(status);
        return;
    }
    load_error[0] = 0;
}

/// Loads the library once per process: `requested`, else `$VISIONPOOL_ONNXRUNTIME_LIBRARY`, else
/// the CPU build set-up installed. 0, or -1 with the first attempt's reason; asking for another
/// library once one was tried is refused, since two copies of ONNX Runtime cannot share a process.
static int vp_ort_load(const char *requested, char *message, size_t capacity) {
    const char *path = requested;
    if (path == NULL || path[0] == 0) path = getenv("VISIONPOOL_ONNXRUNTIME_LIBRARY");
    if (path == NULL || path[0] == 0) path = VP_ORT_DEFAULT_LIBRARY;
    pthread_mutex_lock(&load_lock);
    if (loaded_path[0] == 0) {
        snprintf(loaded_path, sizeof(loaded_path), "%s", path);
        load(path);
    }
    int result = 0;
    if (strcmp(loaded_path, path) != 0) {
        snprintf(message, capacity, "ONNX Runtime from %s is already in this process; %s cannot be loaded beside it", loaded_path, path);
        result = -1;
    } else if (load_error[0] != 0) {
        snprintf(message, capacity, "%s", load_error);
        result = -1;
    }
    pthread_mutex_unlock(&load_lock);
    return result;
}

const char *vp_ort_version(void) { return loaded_version; }

struct vp_ort_engine {
    OrtSession *session;
    OrtIoBinding *binding;
    int on_cuda;
    char *provider_options;
    OrtMemoryInfo *memory;
    char *input_name;
    char *output_name;
    int64_t input_shape[8];
    int input_rank;
    int64_t output_shape[8];
    int output_rank;
    const void *bound_input;
    const void *bound_output;
};

/// Takes a failed status's message into `message` and releases it; -1. 0 for success (NULL).
static int failed(OrtStatus *status, const char *doing, char *message, size_t capacity) {
    if (status == NULL) return 0;
    snprintf(message, capacity, "ONNX Runtime could not %s: %s", doing, ort.GetErrorMessage(status));
    ort.ReleaseStatus(status);
    return -1;
}

static int read_shape(OrtTypeInfo *type, int64_t *dims, int *rank, char *message, size_t capacity) {
    const OrtTensorTypeAndShapeInfo *tensor = NULL;
    size_t count = 0;
    int result = failed(ort.CastTypeInfoToTensorInfo(type, &tensor), "read a tensor type", message, capacity);
    if (result == 0 && tensor == NULL) {
        snprintf(message, capacity, "the model's first input or output is not a tensor");
        result = -1;
    }
    if (result == 0) result = failed(ort.GetDimensionsCount(tensor, &count), "read a tensor's rank", message, capacity);
    if (result == 0 && count > 8) {
        snprintf(message, capacity, "the model has a tensor of rank %zu; visionpool takes up to 8", count);
        result = -1;
    }
    if (result == 0) result = failed(ort.GetDimensions(tensor, dims, count), "read a tensor's shape", message, capacity);
    *rank = (int)count;
    ort.ReleaseTypeInfo(type);
    return result;
}

static const char *const cuda_keys[] = {"cudnn_conv_algo_search", "cudnn_conv_use_max_workspace", "do_copy_in_default_stream"};
static const char *const cuda_values[] = {"EXHAUSTIVE", "1", "1"};

size_t vp_ort_cuda_options(const char *const **keys, const char *const **values) {
    *keys = cuda_keys;
    *values = cuda_values;
    return sizeof(cuda_keys) / sizeof(cuda_keys[0]);
}

/// Adds the CUDA execution provider for `options->cuda_device` with visionpool's options, and
/// keeps what ONNX Runtime made of them.
static int append_cuda(vp_ort_engine *engine, OrtSessionOptions *settings, const vp_ort_options *options, char *message, size_t capacity) {
    OrtCUDAProviderOptionsV2 *cuda = NULL;
    OrtAllocator *allocator = NULL;
    char *text = NULL;
    int result = failed(ort.CreateCUDAProviderOptions(&cuda), "create CUDA provider options", message, capacity);
    if (result == 0) {
        enum { count = sizeof(cuda_keys) / sizeof(cuda_keys[0]) };
        char device[16];
        snprintf(device, sizeof(device), "%d", options->cuda_device);
        const char *keys[count + 1] = {"device_id"}, *values[count + 1] = {device};
        memcpy(keys + 1, cuda_keys, sizeof(cuda_keys));
        memcpy(values + 1, cuda_values, sizeof(cuda_values));
        result = failed(ort.UpdateCUDAProviderOptions(cuda, keys, values, count + 1), "set the CUDA provider's options", message, capacity);
    }
    if (result == 0) result = failed(ort.SessionOptionsAppendExecutionProvider_CUDA_V2(settings, cuda), "add the CUDA execution provider", message, capacity);
    if (result == 0) result = failed(ort.GetAllocatorWithDefaultOptions(&allocator), "get its allocator", message, capacity);
    if (result == 0) result = failed(ort.GetCUDAProviderOptionsAsString(cuda, allocator, &text), "read the CUDA provider's options back", message, capacity);
    if (result == 0) {
        engine->provider_options = strdup(text);
        engine->on_cuda = 1;
        ort.AllocatorFree(allocator, text);
    }
    if (cuda) ort.ReleaseCUDAProviderOptions(cuda);
    return result;
}

int vp_ort_engine_create(const vp_ort_options *options, vp_ort_engine **out, char *message, size_t capacity) {
    if (vp_ort_load(options->library_path, message, capacity) != 0) return -1;
    vp_ort_engine *engine = calloc(1, sizeof(*engine));
    if (engine == NULL) {
        snprintf(message, capacity, "out of memory");
        return -1;
    }
    OrtSessionOptions *settings = NULL;
    int result = failed(ort.CreateSessionOptions(&settings), "create session options", message, capacity);
    if (result == 0) result = failed(ort.SetIntraOpNumThreads(settings, options->threads), "set the intra-op threads", message, capacity);
    if (result == 0) result = failed(ort.SetInterOpNumThreads(settings, 1), "set the inter-op threads", message, capacity);
    if (result == 0) result = failed(ort.SetSessionExecutionMode(settings, VP_ORT_SEQUENTIAL), "choose sequential execution", message, capacity);
    if (result == 0) result = failed(ort.SetSessionGraphOptimizationLevel(settings, VP_ORT_ENABLE_ALL), "enable every graph optimization", message, capacity);
    if (result == 0) {
        result = failed(ort.AddSessionConfigEntry(settings, "session.intra_op.allow_spinning", options->allow_spinning ? "1" : "0"),
                        "set intra-op spinning", message, capacity);
    }
    if (result == 0 && options->profile_prefix != NULL) {
        result = failed(ort.EnableProfiling(settings, options->profile_prefix), "enable profiling", message, capacity);
    }
    if (result == 0 && options->cuda_device >= 0) result = append_cuda(engine, settings, options, message, capacity);
    if (result == 0) result = failed(ort.CreateSession(environment, options->model_path, settings, &engine->session), "load the model", message, capacity);
    if (settings) ort.ReleaseSessionOptions(settings);
    OrtAllocator *allocator = NULL;
    if (result == 0) result = failed(ort.GetAllocatorWithDefaultOptions(&allocator), "get its allocator", message, capacity);
    char *name = NULL;
    if (result == 0) result = failed(ort.SessionGetInputName(engine->session, 0, allocator, &name), "read the input's name", message, capacity);
    if (result == 0) {
        engine->input_name = strdup(name);
        ort.AllocatorFree(allocator, name);
        result = failed(ort.SessionGetOutputName(engine->session, 0, allocator, &name), "read the output's name", message, capacity);
    }
    if (result == 0) {
        engine->output_name = strdup(name);
        ort.AllocatorFree(allocator, name);
    }
    OrtTypeInfo *type = NULL;
    if (result == 0) result = failed(ort.SessionGetInputTypeInfo(engine->session, 0, &type), "read the input's type", message, capacity);
    if (result == 0) result = read_shape(type, engine->input_shape, &engine->input_rank, message, capacity);
    if (result == 0) result = failed(ort.SessionGetOutputTypeInfo(engine->session, 0, &type), "read the output's type", message, capacity);
    if (result == 0) result = read_shape(type, engine->output_shape, &engine->output_rank, message, capacity);
    if (result == 0) result = failed(ort.CreateIoBinding(engine->session, &engine->binding), "create an I/O binding", message, capacity);
    if (result == 0) {
        result = failed(ort.CreateCpuMemoryInfo(VP_ORT_ARENA_ALLOCATOR, VP_ORT_MEM_TYPE_DEFAULT, &engine->memory), "describe CPU memory", message, capacity);
    }
    if (result != 0) {
        vp_ort_engine_destroy(engine);
        return -1;
    }
    *out = engine;
    return 0;
}

void vp_ort_engine_destroy(vp_ort_engine *engine) {
    if (engine == NULL) return;
    if (engine->binding) ort.ReleaseIoBinding(engine->binding);
    if (engine->memory) ort.ReleaseMemoryInfo(engine->memory);
    if (engine->session) ort.ReleaseSession(engine->session);
    free(engine->input_name);
    free(engine->output_name);
    free(engine->provider_options);
    free(engine);
}

static int copy_shape(const int64_t *shape, int rank, int64_t *dims, size_t capacity) {
    if ((size_t)rank > capacity) return -1;
    memcpy(dims, shape, (size_t)rank * sizeof(int64_t));
    return rank;
}

int vp_ort_engine_input_shape(const vp_ort_engine *engine, int64_t *dims, size_t capacity) {
    return copy_shape(engine->input_shape, engine->input_rank, dims, capacity);
}

int vp_ort_engine_output_shape(const vp_ort_engine *engine, int64_t *dims, size_t capacity) {
    return copy_shape(engine->output_shape, engine->output_rank, dims, capacity);
}

static size_t elements(const int64_t *shape, size_t rank) {
    size_t count = 1;
    for (size_t i = 0; i < rank; i++) count *= (size_t)shape[i];
    return count;
}

/// The data address of the output the binding holds (`GetBoundOutputValues`).
static int bound_output(vp_ort_engine *engine, const void **address, char *message, size_t capacity) {
    OrtAllocator *allocator = NULL;
    OrtValue **values = NULL;
    size_t count = 0;
    void *data = NULL;
    int result = failed(ort.GetAllocatorWithDefaultOptions(&allocator), "get its allocator", message, capacity);
    if (result == 0) result = failed(ort.GetBoundOutputValues(engine->binding, allocator, &values, &count), "read the bound output", message, capacity);
    if (result == 0 && count > 0) result = failed(ort.GetTensorMutableData(values[0], &data), "locate the output tensor", message, capacity);
    for (size_t i = 0; i < count; i++) ort.ReleaseValue(values[i]);
    if (values) ort.AllocatorFree(allocator, values);
    *address = data;
    return result;
}

int vp_ort_engine_infer(
    vp_ort_engine *engine, float *input, const int64_t *input_shape, size_t input_rank, float *output,
    const int64_t *output_shape, size_t output_rank, char *message, size_t capacity) {
    OrtValue *in = NULL, *result_value = NULL;
    int result = failed(ort.CreateTensorWithDataAsOrtValue(engine->memory, input, elements(input_shape, input_rank) * sizeof(float), input_shape,
                                                           input_rank, VP_ORT_TENSOR_FLOAT, &in),
                        "wrap the input tensor", message, capacity);
    if (result == 0) {
        result = failed(ort.CreateTensorWithDataAsOrtValue(engine->memory, output, elements(output_shape, output_rank) * sizeof(float), output_shape,
                                                           output_rank, VP_ORT_TENSOR_FLOAT, &result_value),
                        "wrap the output tensor", message, capacity);
    }
    if (result == 0) {
        ort.ClearBoundInputs(engine->binding);
        ort.ClearBoundOutputs(engine->binding);
        result = failed(ort.BindInput(engine->binding, engine->input_name, in), "bind the input", message, capacity);
    }
    if (result == 0) result = failed(ort.BindOutput(engine->binding, engine->output_name, result_value), "bind the output", message, capacity);
    if (result == 0) result = failed(ort.RunWithBinding(engine->session, NULL, engine->binding), "run the model", message, capacity);
    if (result == 0 && engine->on_cuda) result = failed(ort.SynchronizeBoundOutputs(engine->binding), "wait for the scores", message, capacity);
    // Where the tensors ONNX Runtime ran on hold their data: the input as bound, the output as
    // the binding holds it after the run.
    void *data = NULL;
    if (result == 0) result = failed(ort.GetTensorMutableData(in, &data), "locate the input tensor", message, capacity);
    if (result == 0) engine->bound_input = data;
    if (result == 0) result = bound_output(engine, &engine->bound_output, message, capacity);
    if (in) ort.ReleaseValue(in);
    if (result_value) ort.ReleaseValue(result_value);
    return result;
}

int vp_ort_engine_end_profiling(vp_ort_engine *engine, char *path, size_t path_capacity, char *message, size_t capacity) {
    OrtAllocator *allocator = NULL;
    char *written = NULL;
    int result = failed(ort.GetAllocatorWithDefaultOptions(&allocator), "get its allocator", message, capacity);
    if (result == 0) result = failed(ort.SessionEndProfiling(engine->session, allocator, &written), "end profiling", message, capacity);
    if (result == 0 && (written == NULL || written[0] == 0)) {
        snprintf(message, capacity, "ONNX Runtime wrote no profile: the session was not created with profiling");
        result = -1;
    }
    if (result == 0) snprintf(path, path_capacity, "%s", written);
    if (written) ort.AllocatorFree(allocator, written);
    return result;
}

const char *vp_ort_engine_provider_options(const vp_ort_engine *engine) { return engine->provider_options ? engine->provider_options : ""; }

const void *vp_ort_engine_bound_input(const vp_ort_engine *engine) { return engine->bound_input; }
const void *vp_ort_engine_bound_output(const vp_ort_engine *engine) { return engine->bound_output; }
