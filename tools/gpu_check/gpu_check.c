// The GPU check's driver: the C engine layer visionpool's workers run (COnnxRuntime's session,
// binding and CUDA provider; CCuda's driver probe, library loading and host-memory pinning),
// driven without Swift, so it runs on a GPU machine that has a C compiler but no Swift
// toolchain. tools/gpu_check.sh builds and runs it; see docs/gpu.md.
//
//   gpu_check --model FILE.onnx --library libonnxruntime.so --device cpu|cuda:N [--cuda-root DIR]
//             --inputs SAMPLES.f32 [--scores OUT.f32] [--batches 1,8,32] [--seconds 5] [--no-pin]
//
// Prints one JSON object: the device, the provider options ONNX Runtime holds, whether the
// buffer was pinned and bound in place, and images/s and batch latency per batch size.
#define _GNU_SOURCE
#include "CCuda.h"
#include "COnnxRuntime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *what, const char *message) {
    fprintf(stderr, "gpu_check: %s: %s\n", what, message);
    exit(1);
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *model = NULL, *library = NULL, *device = "cpu", *cuda_root = NULL, *inputs_path = NULL, *scores_path = NULL;
    const char *batches_text = "1,8,32";
    double seconds = 5;
    int pin = 1;
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--no-pin") == 0) { pin = 0; continue; }
        if (value == NULL) die(argv[i], "needs a value");
        if (strcmp(argv[i], "--model") == 0) model = value;
        else if (strcmp(argv[i], "--library") == 0) library = value;
        else if (strcmp(argv[i], "--device") == 0) device = value;
        else if (strcmp(argv[i], "--cuda-root") == 0) cuda_root = value;
        else if (strcmp(argv[i], "--inputs") == 0) inputs_path = value;
        else if (strcmp(argv[i], "--scores") == 0) scores_path = value;
        else if (strcmp(argv[i], "--batches") == 0) batches_text = value;
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atof(value);
        else die(argv[i], "unknown option");
        i++;
    }
    if (model == NULL || library == NULL || inputs_path == NULL) die("usage", "--model, --library and --inputs are required");
    int cuda_device = -1;
    if (strncmp(device, "cuda:", 5) == 0) cuda_device = atoi(device + 5);
    else if (strcmp(device, "cpu") != 0) die("--device", "cpu or cuda:N");

    char message[1024], name[256] = "cpu";
    size_t gpu_memory = 0;
    if (cuda_device >= 0) {
        if (cuda_root == NULL) die("--cuda-root", "needed with a CUDA device");
        const char *folders[][2] = {{"nvidia/cu13/lib", "libcudart.so.13"}, {"nvidia/cudnn/lib", "libcudnn.so.9"}};
        for (int i = 0; i < 2; i++) {
            char folder[4096];
            snprintf(folder, sizeof(folder), "%s/%s", cuda_root, folders[i][0]);
            if (vp_cuda_preload_folder(folder, folders[i][1], message, sizeof(message)) != 0) die("CUDA libraries", message);
        }
        vp_cuda_driver_info driver;
        if (vp_cuda_driver_probe(&driver, message, sizeof(message)) != 0) die("driver", message);
        if (vp_cuda_device_describe(cuda_device, name, sizeof(name), &gpu_memory, message, sizeof(message)) != 0) die("device", message);
        fprintf(stderr, "gpu_check: %s, %zu GiB, driver CUDA %d.%d\n", name, gpu_memory >> 30, driver.driver_version / 1000, driver.driver_version % 1000 / 10);
    }

    vp_ort_options options = {.library_path = library, .model_path = model, .threads = 1, .allow_spinning = 0, .profile_prefix = NULL, .cuda_device = cuda_device};
    vp_ort_engine *engine = NULL;
    double load_start = now();
    if (vp_ort_engine_create(&options, &engine, message, sizeof(message)) != 0) die("engine", message);
    double load_seconds = now() - load_start;
    int64_t dims[8];
    int rank = vp_ort_engine_input_shape(engine, dims, 8);
    size_t sample = 1;
    for (int i = 1; i < rank; i++) sample *= (size_t)dims[i];
    vp_ort_engine_output_shape(engine, dims, 8);
    size_t classes = (size_t)dims[1];

    FILE *file = fopen(inputs_path, "rb");
    if (file == NULL) die(inputs_path, "cannot open");
    fseek(file, 0, SEEK_END);
    size_t photos = (size_t)ftell(file) / (sample * sizeof(float));
    fseek(file, 0, SEEK_SET);
    float *samples = malloc(photos * sample * sizeof(float));
    if (photos == 0 || fread(samples, sizeof(float), photos * sample, file) != photos * sample) die(inputs_path, "holds no whole sample");
    fclose(file);

    int batches[16], batch_count = 0, largest = 1;
    for (char *text = strdup(batches_text), *token = strtok(text, ","); token && batch_count < 16; token = strtok(NULL, ",")) {
        batches[batch_count] = atoi(token);
        if (batches[batch_count] > largest) largest = batches[batch_count];
        batch_count++;
    }
    // One shared mapping for input and output, as a worker's arena slot is.
    size_t input_bytes = (size_t)largest * sample * sizeof(float), bytes = input_bytes + (size_t)largest * classes * sizeof(float);
    bytes = (bytes + 4095) & ~(size_t)4095;
    float *input = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (input == MAP_FAILED) die("mmap", "cannot map the slot");
    float *output = (float *)((char *)input + input_bytes);
    int pinned = 0;
    if (cuda_device >= 0 && pin) {
        if (vp_cuda_host_register(input, bytes, message, sizeof(message)) != 0) die("pinning", message);
        pinned = 1;
    }

    printf("{\"device\": \"%s\", \"name\": \"%s\", \"gpu_memory_bytes\": %zu, \"pinned\": %s, \"load_seconds\": %.3f, \"provider_options\": \"%s\"",
           device, name, gpu_memory, pinned ? "true" : "false", load_seconds, vp_ort_engine_provider_options(engine));

    // Scores of every photo at batch 1, for the top-5 comparison between devices.
    FILE *scores = scores_path ? fopen(scores_path, "wb") : NULL;
    int in_place = 1;
    for (size_t photo = 0; photo < photos; photo++) {
        memcpy(input, samples + photo * sample, sample * sizeof(float));
        int64_t in_shape[4] = {1, 0, 0, 0}, out_shape[2] = {1, (int64_t)classes};
        vp_ort_engine_input_shape(engine, dims, 8);
        for (int i = 1; i < rank; i++) in_shape[i] = dims[i];
        if (vp_ort_engine_infer(engine, input, in_shape, (size_t)rank, output, out_shape, 2, message, sizeof(message)) != 0) die("inference", message);
        in_place &= vp_ort_engine_bound_input(engine) == input && vp_ort_engine_bound_output(engine) == output;
        if (scores) fwrite(output, sizeof(float), classes, scores);
    }
    if (scores) fclose(scores);
    printf(", \"bound_in_place\": %s, \"photos\": %zu, \"runs\": [", in_place ? "true" : "false", photos);

    for (int b = 0; b < batch_count; b++) {
        int batch = batches[b];
        for (int row = 0; row < batch; row++) memcpy(input + (size_t)row * sample, samples + (size_t)(row % photos) * sample, sample * sizeof(float));
        int64_t in_shape[4] = {batch, 0, 0, 0}, out_shape[2] = {batch, (int64_t)classes};
        vp_ort_engine_input_shape(engine, dims, 8);
        for (int i = 1; i < rank; i++) in_shape[i] = dims[i];
        for (int warm = 0; warm < 3; warm++) {
            if (vp_ort_engine_infer(engine, input, in_shape, (size_t)rank, output, out_shape, 2, message, sizeof(message)) != 0) die("inference", message);
        }
        double times[100000];
        size_t runs = 0;
        double start = now(), elapsed = 0;
        while (elapsed < seconds && runs < 100000) {
            double began = now();
            if (vp_ort_engine_infer(engine, input, in_shape, (size_t)rank, output, out_shape, 2, message, sizeof(message)) != 0) die("inference", message);
            times[runs++] = now() - began;
            elapsed = now() - start;
        }
        qsort(times, runs, sizeof(double), compare_doubles);
        printf("%s{\"batch\": %d, \"images_per_second\": %.1f, \"batch_ms_p50\": %.3f, \"batch_ms_p99\": %.3f}", b ? ", " : "", batch,
               (double)runs * batch / elapsed, times[runs / 2] * 1e3, times[runs * 99 / 100] * 1e3);
        fflush(stdout);
    }
    printf("]}\n");
    if (pinned) vp_cuda_host_unregister(input, message, sizeof(message));
    vp_ort_engine_destroy(engine);
    return 0;
}
