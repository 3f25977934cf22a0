// An OpenVINO CPU engine over the C API: one core and model, one compiled model and infer
// request per batch size, input and output bound to caller memory as host-pointer tensors.
#include "COpenVINO.h"

#if !__has_include(<openvino/c/openvino.h>)
#error "OpenVINO's C headers are missing: run tools/setup.sh, which installs the pinned openvino wheel into .venv"
#endif
#include <openvino/c/openvino.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <unistd.h>

/// Distinct batch sizes one engine keeps compiled.
#define VP_OV_MAX_BATCH_SIZES 16

typedef struct {
    int32_t batch;
    ov_compiled_model_t *compiled;
    ov_infer_request_t *request;
    ov_tensor_t *input;
    ov_tensor_t *output;
    const void *bound_input;
    const void *bound_output;
} vp_ov_compiled_batch;

struct vp_ov_engine {
    ov_core_t *core;
    ov_model_t *model;
    int64_t input_shape[VP_OV_MAX_RANK]; // dimension 0 is the batch
    int64_t output_shape[VP_OV_MAX_RANK];
    int32_t input_rank, output_rank;
    size_t sample_input_count, sample_output_count;
    char threads[16];
    char cache_lock[4096];  // empty without a cache
    char precision_hint[16];
    char actual_precision[16];
    vp_ov_compiled_batch batches[VP_OV_MAX_BATCH_SIZES];
    int32_t batch_count;
};

/// Appends OpenVINO's message to `out` on one line. OpenVINO nests its messages as lines of
/// "Exception from src/…/core.cpp:117:" around what failed: those lines name its own source,
/// not the problem, and are left out; the rest has its line breaks and runs of spaces folded.
static void append_detail(char *out, size_t capacity, const char *detail) {
    size_t length = strlen(out);
    int pending_space = 0;
    for (const char *line = detail; *line != '\0' && length + 1 < capacity;) {
        const char *end = strchr(line, '\n');
        if (end == NULL) end = line + strlen(line);
        if (strncmp(line, "Exception from ", 15) != 0) {
            for (const char *c = line; c < end && length + 1 < capacity; c++) {
                if (*c == ' ' || *c == '\t' || *c == '\r') {
                    pending_space = length > 0;
                    continue;
                }
                if (pending_space && length + 2 < capacity) out[length++] = ' ';
                pending_space = 0;
                out[length++] = *c;
            }
            pending_space = length > 0;
        }
        line = *end == '\n' ? end + 1 : end;
    }
    out[length] = '\0';
}

static int32_t fail(ov_status_e status, char *message, size_t capacity, const char *format, ...) {
    if (message == NULL || capacity == 0) return status == OK ? -1 : (int32_t)status;
    va_list args;
    va_start(args, format);
    int written = vsnprintf(message, capacity, format, args);
    va_end(args);
    if (status != OK && written >= 0 && (size_t)written + 2 < capacity) {
        const char *detail = ov_get_last_err_msg();
        snprintf(message + written, capacity - (size_t)written, ": ");
        append_detail(message, capacity, detail != NULL && detail[0] != '\0' ? detail : ov_get_error_info(status));
    }
    return status == OK ? -1 : (int32_t)status;
}

/// Copies a partial shape into `dims` (-1 for dynamic); returns its rank, or -1 if unusable.
static int32_t copy_shape(const ov_output_const_port_t *port, int64_t *dims) {
    ov_partial_shape_t shape;
    if (ov_port_get_partial_shape(port, &shape) != OK) return -1;
    int32_t rank = -1;
    if (!ov_rank_is_dynamic(shape.rank) && shape.rank.max <= VP_OV_MAX_RANK) {
        rank = (int32_t)shape.rank.max;
        for (int32_t axis = 0; axis < rank; axis++) {
            const ov_dimension_t dim = shape.dims[axis];
            dims[axis] = dim.min == dim.max ? dim.max : -1;
        }
    }
    ov_partial_shape_free(&shape);
    return rank;
}

static void copy_name(const ov_output_const_port_t *port, char *name, size_t capacity) {
    char *any = NULL;
    name[0] = '\0';
    if (ov_port_get_any_name(port, &any) == OK && any != NULL) {
        snprintf(name, capacity, "%s", any);
        ov_free(any);
    }
}

static int32_t describe_io(const ov_model_t *model, vp_ov_model_io *io, char *message, size_t capacity) {
    memset(io, 0, sizeof(*io));
    size_t inputs = 0, outputs = 0;
    ov_model_inputs_size(model, &inputs);
    ov_model_outputs_size(model, &outputs);
    io->input_count = (int32_t)inputs;
    io->output_count = (int32_t)outputs;
    if (inputs < 1 || outputs < 1) return fail(OK, message, capacity, "the model has %zu inputs and %zu outputs", inputs, outputs);
    ov_output_const_port_t *input = NULL, *output = NULL;
    ov_status_e status = ov_model_const_input(model, &input);
    if (status != OK) return fail(status, message, capacity, "cannot read the model's input");
    status = ov_model_const_output(model, &output);
    if (status != OK) {
        ov_output_const_port_free(input);
        return fail(status, message, capacity, "cannot read the model's output");
    }
    copy_name(input, io->input_name, sizeof(io->input_name));
    copy_name(output, io->output_name, sizeof(io->output_name));
    io->input_rank = copy_shape(input, io->input_shape);
    io->output_rank = copy_shape(output, io->output_shape);
    ov_output_const_port_free(input);
    ov_output_const_port_free(output);
    if (io->input_rank < 0 || io->output_rank < 0) return fail(OK, message, capacity, "the model's input or output rank is dynamic");
    return 0;
}

int32_t vp_ov_inspect(const char *model_path, vp_ov_model_io *io, char *message, size_t capacity) {
    ov_core_t *core = NULL;
    ov_model_t *model = NULL;
    ov_status_e status = ov_core_create(&core);
    if (status != OK) return fail(status, message, capacity, "cannot start OpenVINO");
    status = ov_core_read_model(core, model_path, NULL, &model);
    int32_t result = status != OK ? fail(status, message, capacity, "cannot read model %s", model_path)
                                  : describe_io(model, io, message, capacity);
    if (model != NULL) ov_model_free(model);
    ov_core_free(core);
    return result;
}

static size_t sample_count(const int64_t *shape, int32_t rank) {
    size_t count = 1;
    for (int32_t axis = 1; axis < rank; axis++) count *= (size_t)shape[axis];
    return count;
}

/// Reshapes the model to a batch of `batch`.
static int32_t reshape(vp_ov_engine *engine, int32_t batch, char *message, size_t capacity) {
    int64_t dims[VP_OV_MAX_RANK];
    memcpy(dims, engine->input_shape, sizeof(dims));
    dims[0] = batch;
    ov_partial_shape_t shape;
    ov_status_e status = ov_partial_shape_create_static(engine->input_rank, dims, &shape);
    if (status != OK) return fail(status, message, capacity, "cannot describe batch %d", batch);
    status = ov_model_reshape_single_input(engine->model, shape);
    ov_partial_shape_free(&shape);
    if (status != OK) return fail(status, message, capacity, "the model cannot take a batch of %d", batch);
    return 0;
}

/// Takes the cache folder's compile lock (`flock` on CACHE_LOCK_NAME there); -1 without a cache.
/// OpenVINO writes a cache blob in place: a worker importing the blob while another process
/// writes it died of SIGBUS (6 of 8 cold starts of two workers here), so compiles through one
/// cache folder take turns. The first compiles and writes the blob, the others then import it.
static int lock_cache(const vp_ov_engine *engine) {
    if (engine->cache_lock[0] == '\0') return -1;
    int descriptor = open(engine->cache_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (descriptor < 0) return -1;  // an unwritable cache folder fails the compile itself, with OpenVINO's reason
    while (flock(descriptor, LOCK_EX) != 0 && errno == EINTR) {}
    return descriptor;
}

#define CACHE_LOCK_NAME "visionpool-compile.lock"

/// Compiles the model as it is shaped now for the CPU with the engine's settings; `profiling`
/// adds per-layer performance counters (ENABLE_PROFILING), which cost time on every inference.
static ov_status_e compile(vp_ov_engine *engine, int profiling, ov_compiled_model_t **compiled) {
    ov_property_t properties[5];
    size_t property_count = 0;
    properties[property_count++] = (ov_property_t){ov_property_key_hint_performance_mode, "LATENCY"};
    properties[property_count++] = (ov_property_t){ov_property_key_num_streams, "1"};
    if (engine->threads[0] != '\0') properties[property_count++] = (ov_property_t){ov_property_key_inference_num_threads, engine->threads};
    if (engine->precision_hint[0] != '\0') properties[property_count++] = (ov_property_t){ov_property_key_hint_inference_precision, engine->precision_hint};
    if (profiling) properties[property_count++] = (ov_property_t){ov_property_key_enable_profiling, "YES"};
    int lock = lock_cache(engine);
    ov_status_e status = ov_core_compile_model_props(engine->core, engine->model, "CPU", property_count, properties, compiled);
    if (lock >= 0) close(lock);
    return status;
}

/// Reshapes the model to `batch`, compiles it, and creates its infer request.
static int32_t compile_batch(vp_ov_engine *engine, int32_t batch, vp_ov_compiled_batch **compiled, char *message, size_t capacity) {
    if (engine->batch_count == VP_OV_MAX_BATCH_SIZES) {
        return fail(OK, message, capacity, "more than %d distinct batch sizes", VP_OV_MAX_BATCH_SIZES);
    }
    int32_t error = reshape(engine, batch, message, capacity);
    if (error != 0) return error;

    vp_ov_compiled_batch *entry = &engine->batches[engine->batch_count];
    memset(entry, 0, sizeof(*entry));
    entry->batch = batch;
    ov_status_e status = compile(engine, 0, &entry->compiled);
    if (status != OK) return fail(status, message, capacity, "cannot compile the model for batch %d", batch);
    status = ov_compiled_model_create_infer_request(entry->compiled, &entry->request);
    if (status != OK) {
        ov_compiled_model_free(entry->compiled);
        return fail(status, message, capacity, "cannot create an infer request");
    }
    if (engine->actual_precision[0] == '\0') {
        char *precision = NULL;
        if (ov_compiled_model_get_property(entry->compiled, ov_property_key_hint_inference_precision, &precision) == OK && precision != NULL) {
            snprintf(engine->actual_precision, sizeof(engine->actual_precision), "%s", precision);
            ov_free(precision);
        }
    }
    engine->batch_count++;
    *compiled = entry;
    return 0;
}

int32_t vp_ov_engine_create(const vp_ov_options *options, vp_ov_engine **result, char *message, size_t capacity) {
    vp_ov_engine *engine = calloc(1, sizeof(vp_ov_engine));
    if (engine == NULL) return fail(OK, message, capacity, "out of memory");
    if (options->threads > 0) snprintf(engine->threads, sizeof(engine->threads), "%d", options->threads);
    if (options->precision != NULL) snprintf(engine->precision_hint, sizeof(engine->precision_hint), "%s", options->precision);

    int32_t error = 0;
    ov_status_e status = ov_core_create(&engine->core);
    if (status != OK) {
        error = fail(status, message, capacity, "cannot start OpenVINO");
        goto failed;
    }
    if (options->cache_dir != NULL) {
        snprintf(engine->cache_lock, sizeof(engine->cache_lock), "%s/" CACHE_LOCK_NAME, options->cache_dir);
        const ov_property_t cache = {ov_property_key_cache_dir, options->cache_dir};
        status = ov_core_set_properties(engine->core, NULL, 1, &cache);
        if (status != OK) {
            error = fail(status, message, capacity, "cannot use cache directory %s", options->cache_dir);
            goto failed;
        }
    }
    status = ov_core_read_model(engine->core, options->model_path, NULL, &engine->model);
    if (status != OK) {
        error = fail(status, message, capacity, "cannot read model %s", options->model_path);
        goto failed;
    }
    vp_ov_model_io io;
    error = describe_io(engine->model, &io, message, capacity);
    if (error != 0) goto failed;
    for (int32_t axis = 1; axis < io.input_rank; axis++) {
        if (io.input_shape[axis] < 1) {
            error = fail(OK, message, capacity, "input dimension %d of %s is dynamic; only the batch may be", axis, options->model_path);
            goto failed;
        }
    }
    engine->input_rank = io.input_rank;
    memcpy(engine->input_shape, io.input_shape, sizeof(engine->input_shape));
    engine->sample_input_count = sample_count(engine->input_shape, engine->input_rank);

    vp_ov_compiled_batch *first = NULL;
    error = compile_batch(engine, 1, &first, message, capacity);
    if (error != 0) goto failed;
    ov_output_const_port_t *output = NULL;
    status = ov_compiled_model_output(first->compiled, &output);
    if (status != OK) {
        error = fail(status, message, capacity, "cannot read the compiled model's output");
        goto failed;
    }
    engine->output_rank = copy_shape(output, engine->output_shape);
    ov_output_const_port_free(output);
    if (engine->output_rank < 1) {
        error = fail(OK, message, capacity, "the model's output shape is not static at batch 1");
        goto failed;
    }
    engine->sample_output_count = sample_count(engine->output_shape, engine->output_rank);
    *result = engine;
    return 0;

failed:
    vp_ov_engine_destroy(engine);
    return error;
}

static vp_ov_compiled_batch *find_batch(const vp_ov_engine *engine, int32_t batch) {
    for (int32_t index = 0; index < engine->batch_count; index++) {
        if (engine->batches[index].batch == batch) return (vp_ov_compiled_batch *)&engine->batches[index];
    }
    return NULL;
}

/// Wraps caller memory as a tensor of `shape` with batch `batch`, and sets it on the request.
static int32_t bind(ov_infer_request_t *request, int is_input, const int64_t *shape, int32_t rank, int32_t batch, void *memory,
                    ov_tensor_t **tensor, char *message, size_t capacity) {
    int64_t dims[VP_OV_MAX_RANK];
    memcpy(dims, shape, sizeof(dims));
    dims[0] = batch;
    ov_shape_t tensor_shape;
    ov_status_e status = ov_shape_create(rank, dims, &tensor_shape);
    if (status != OK) return fail(status, message, capacity, "cannot describe a tensor");
    ov_tensor_t *created = NULL;
    status = ov_tensor_create_from_host_ptr(F32, tensor_shape, memory, &created);
    ov_shape_free(&tensor_shape);
    if (status != OK) return fail(status, message, capacity, "cannot wrap caller memory as a tensor");
    status = is_input ? ov_infer_request_set_input_tensor(request, created) : ov_infer_request_set_output_tensor(request, created);
    if (status != OK) {
        ov_tensor_free(created);
        return fail(status, message, capacity, "cannot bind the %s tensor", is_input ? "input" : "output");
    }
    if (*tensor != NULL) ov_tensor_free(*tensor);
    *tensor = created;
    return 0;
}

int32_t vp_ov_engine_infer(vp_ov_engine *engine, int32_t batch, float *input, size_t input_count, float *output,
                           size_t output_count, char *message, size_t capacity) {
    if (batch < 1) return fail(OK, message, capacity, "batch size %d is not positive", batch);
    if (input_count != (size_t)batch * engine->sample_input_count || output_count != (size_t)batch * engine->sample_output_count) {
        return fail(OK, message, capacity, "a batch of %d needs %zu input and %zu output floats, not %zu and %zu", batch,
                    (size_t)batch * engine->sample_input_count, (size_t)batch * engine->sample_output_count, input_count, output_count);
    }
    vp_ov_compiled_batch *compiled = find_batch(engine, batch);
    if (compiled == NULL) {
        int32_t error = compile_batch(engine, batch, &compiled, message, capacity);
        if (error != 0) return error;
    }
    if (compiled->bound_input != input) {
        int32_t error = bind(compiled->request, 1, engine->input_shape, engine->input_rank, batch, input, &compiled->input, message, capacity);
        if (error != 0) return error;
        compiled->bound_input = input;
    }
    if (compiled->bound_output != output) {
        int32_t error = bind(compiled->request, 0, engine->output_shape, engine->output_rank, batch, output, &compiled->output, message, capacity);
        if (error != 0) return error;
        compiled->bound_output = output;
    }
    ov_status_e status = ov_infer_request_infer(compiled->request);
    if (status != OK) return fail(status, message, capacity, "inference failed");
    return 0;
}

size_t vp_ov_engine_sample_input_count(const vp_ov_engine *engine) { return engine->sample_input_count; }
size_t vp_ov_engine_sample_output_count(const vp_ov_engine *engine) { return engine->sample_output_count; }
const char *vp_ov_engine_precision(const vp_ov_engine *engine) { return engine->actual_precision; }

const void *vp_ov_engine_bound_input(const vp_ov_engine *engine, int32_t batch) {
    const vp_ov_compiled_batch *compiled = find_batch(engine, batch);
    return compiled == NULL ? NULL : compiled->bound_input;
}

const void *vp_ov_engine_bound_output(const vp_ov_engine *engine, int32_t batch) {
    const vp_ov_compiled_batch *compiled = find_batch(engine, batch);
    return compiled == NULL ? NULL : compiled->bound_output;
}

void vp_ov_engine_destroy(vp_ov_engine *engine) {
    if (engine == NULL) return;
    for (int32_t index = 0; index < engine->batch_count; index++) {
        vp_ov_compiled_batch *compiled = &engine->batches[index];
        if (compiled->input != NULL) ov_tensor_free(compiled->input);
        if (compiled->output != NULL) ov_tensor_free(compiled->output);
        ov_infer_request_free(compiled->request);
        ov_compiled_model_free(compiled->compiled);
    }
    if (engine->model != NULL) ov_model_free(engine->model);
    if (engine->core != NULL) ov_core_free(engine->core);
    free(engine);
}

int32_t vp_ov_default_precision(char *precision, size_t precision_capacity, char *message, size_t capacity) {
    ov_core_t *core = NULL;
    ov_status_e status = ov_core_create(&core);
    if (status != OK) return fail(status, message, capacity, "cannot start OpenVINO");
    char *value = NULL;
    status = ov_core_get_property(core, "CPU", ov_property_key_hint_inference_precision, &value);
    int32_t result = 0;
    if (status == OK && value != NULL) {
        snprintf(precision, precision_capacity, "%s", value);
    } else {
        result = fail(status, message, capacity, "cannot read the CPU plugin's default precision");
    }
    if (value != NULL) ov_free(value);
    ov_core_free(core);
    return result;
}

const char *vp_ov_version(void) {
    static char text[128];
    if (text[0] == '\0') {
        ov_version_t version;
        if (ov_get_openvino_version(&version) == OK) {
            snprintf(text, sizeof(text), "%s", version.buildNumber);
            ov_version_free(&version);
        }
    }
    return text;
}

/// Which precision a kernel's exec type names: its last "_" part (e.g. brgconv_avx512_I8, brgemm_avx512_bf16).
static void count_precision(const char *exec_type, vp_ov_kernel_census *census) {
    const char *suffix = strrchr(exec_type, '_');
    if (suffix == NULL) {
        census->other++;
    } else if (strcasecmp(suffix, "_i8") == 0 || strcasecmp(suffix, "_u8") == 0) {
        census->int8++;
    } else if (strcasecmp(suffix, "_bf16") == 0) {
        census->bf16++;
    } else if (strcasecmp(suffix, "_f16") == 0 || strcasecmp(suffix, "_fp16") == 0) {
        census->f16++;
    } else if (strcasecmp(suffix, "_f32") == 0 || strcasecmp(suffix, "_fp32") == 0) {
        census->f32++;
    } else {
        census->other++;
    }
}

/// Which instruction-set family a kernel's exec type names (e.g. brgconv_avx512_amx_1x1_I8 is AMX,
/// jit_avx2_1x1_I8 AVX2, gemm_mlas_f32 OpenVINO's own MLAS).
static void count_instruction_set(const char *exec_type, vp_ov_kernel_census *census) {
    if (strstr(exec_type, "amx") != NULL) {
        census->amx++;
    } else if (strstr(exec_type, "avx512") != NULL) {
        census->avx512++;
    } else if (strstr(exec_type, "avx2") != NULL) {
        census->avx2++;
    } else if (strstr(exec_type, "sse41") != NULL) {
        census->sse41++;
    } else if (strstr(exec_type, "mlas") != NULL) {
        census->mlas++;
    } else {
        census->unnamed_isa++;
    }
}

int32_t vp_ov_engine_kernel_census(vp_ov_engine *engine, vp_ov_kernel_census *census, char *message, size_t capacity) {
    memset(census, 0, sizeof(*census));
    int32_t error = reshape(engine, 1, message, capacity);
    if (error != 0) return error;
    ov_compiled_model_t *compiled = NULL;
    ov_infer_request_t *request = NULL;
    ov_tensor_t *input = NULL;
    ov_shape_t shape = {0};
    ov_profiling_info_list_t layers = {0};
    int64_t dims[VP_OV_MAX_RANK];
    memcpy(dims, engine->input_shape, sizeof(dims));
    dims[0] = 1;
    void *data = NULL;
    ov_status_e status = compile(engine, 1, &compiled);
    if (status == OK) status = ov_compiled_model_create_infer_request(compiled, &request);
    if (status == OK) status = ov_shape_create(engine->input_rank, dims, &shape);
    if (status == OK) status = ov_tensor_create(F32, shape, &input);
    if (status == OK) status = ov_tensor_data(input, &data);
    if (status == OK) {
        memset(data, 0, engine->sample_input_count * sizeof(float));
        status = ov_infer_request_set_input_tensor(request, input);
    }
    if (status == OK) status = ov_infer_request_infer(request);
    if (status == OK) status = ov_infer_request_get_profiling_info(request, &layers);
    if (status == OK) {
        for (size_t index = 0; index < layers.size; index++) {
            const ov_profiling_info_t *layer = &layers.profiling_infos[index];
            const char *type = layer->node_type == NULL ? "" : layer->node_type;
            if (layer->status != EXECUTED) continue;
            if (strstr(type, "Convolution") == NULL && strstr(type, "FullyConnected") == NULL && strstr(type, "MatMul") == NULL) continue;
            const char *exec_type = layer->exec_type == NULL ? "" : layer->exec_type;
            count_precision(exec_type, census);
            count_instruction_set(exec_type, census);
        }
        ov_profiling_info_list_free(&layers);
    } else {
        error = fail(status, message, capacity, "cannot profile the compiled model");
    }
    if (input != NULL) ov_tensor_free(input);
    if (shape.dims != NULL) ov_shape_free(&shape);
    if (request != NULL) ov_infer_request_free(request);
    if (compiled != NULL) ov_compiled_model_free(compiled);
    return error;
}
