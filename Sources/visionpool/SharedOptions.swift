import SystemSupport
import ArgumentParser
import Foundation
import InferenceEngines
import ModelCatalog
import ModelRegistry
import ImagePipeline
import Classification
import WorkerPool

extension EngineKind: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}
extension ModelManifest.Output.Kind: ExpressibleByArgument {}
extension JPEGDecoding: ExpressibleByArgument {}

/// What the front's decoder may do with any image: how large, and how exactly JPEGs are decoded.
struct DecoderOptions: ParsableArguments {
    @Option(help: "Refuse images whose header claims more pixels than this (decompression bombs; read before decoding).")
    var maxPixels: Int = PreprocessSpec.defaultMaxPixels

    @Option(help: ArgumentHelp(
        "How JPEGs are decoded: exact, fast-upsampling, fast-idct or fast (both).",
        discussion: """
            exact is libjpeg-turbo's accurate inverse DCT with fancy chroma upsampling, the pixels OpenCV's reader gives. \
            The fast options are libjpeg-turbo's own: merged chroma upsampling and the fast integer inverse DCT; \
            docs/PERFORMANCE.md gives what each saves and how often it changes a model's top class.
            """))
    var jpegDecoding: JPEGDecoding = .exact

    func validate() throws {
        guard maxPixels >= 1 else { throw ValidationError("--max-pixels must be at least 1") }
    }

    var settings: DecoderSettings { DecoderSettings(maxPixels: maxPixels, jpeg: jpegDecoding) }
}

/// Which catalog, and which model in it; or one model's own folder; or one model of a repository.
struct ModelSelection: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The model to run (see `visionpool models`); with --model-dir, the name to serve it under; with --model-repository, its folder.",
        discussion: "Default: \(ModelCatalog.defaultModelName); with --model-dir, its manifest's name, else the ONNX file's."))
    var model: String?

    @Option(help: ArgumentHelp("The model catalog folder.", discussion: "Defaults to $VISIONPOOL_MODELS, else the first Models/ folder holding manifests beside the binary or above it (PREFIX/Models for PREFIX/bin/visionpool)."))
    var modelsDir: String?

    @Option(help: ArgumentHelp(
        "Run the one model in this folder instead of a catalog's (e.g. KServe's /mnt/models; read-only is fine).",
        discussion: """
            The folder holds an ONNX image classifier (or numbered version folders holding one, as OpenVINO Model Server \
            lays them out: the highest is used), optionally labels.txt (one class per line) and a visionpool manifest \
            (*.json, as `visionpool models` writes them) for other preprocessing; without a manifest the input size is read \
            from the file and ImageNet's preprocessing applies. Nothing is written there: compiled models are cached in --cache-dir.
            """),
        completion: .directory)
    var modelDir: String?

    @Option(help: ArgumentHelp(
        "Run --model from this model repository (a folder of model folders, as `serve --model-repository` reads it).",
        discussion: "The model's version is the newest its config.json's version policy chooses."),
        completion: .directory)
    var modelRepository: String?

    func validate() throws {
        if let model, !ModelCatalog.isValidName(model) {
            throw ValidationError("--model \(model): names are lower-case letters, digits, '.', '_' and '-'")
        }
        if [modelDir, modelsDir, modelRepository].compactMap({ $0 }).count > 1 {
            throw ValidationError("--model-dir, --models-dir and --model-repository exclude each other: each says where the model comes from")
        }
        if modelRepository != nil, model == nil { throw ValidationError("--model-repository needs --model NAME, the model's folder in it") }
    }

    /// The model's name as requests address it.
    var modelName: String { model ?? ModelCatalog.defaultModelName }

    var catalog: ModelCatalog { Self.catalog(at: modelsDir) }

    static func catalog(at modelsDir: String?) -> ModelCatalog {
        ModelCatalog(directory: modelsDir.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? ModelCatalog.defaultDirectory())
    }

    /// The model's name for people, with its version where the folder has versions to choose from.
    func describe(_ served: ServedEntry) -> String {
        modelRepository != nil || modelDir != nil ? "\(served.entry.manifest.name) version \(served.version)" : served.entry.manifest.name
    }

    /// The selected model: from --model-dir's folder, from the repository, or by name from the catalog.
    func entry() throws -> CatalogEntry { try servedEntry().entry }

    /// The selected model and the version it serves as.
    func servedEntry() throws -> ServedEntry {
        if let modelRepository {
            return try ModelRepository(directory: URL(fileURLWithPath: modelRepository, isDirectory: true)).served(modelName).versions[0]
        }
        if let modelDir {
            return try ModelDirectory(directory: URL(fileURLWithPath: modelDir, isDirectory: true)).servedEntry(name: model)
        }
        return ServedEntry(entry: try catalog.entry(named: modelName), version: "1")
    }
}

/// `--device`: the CPU, every GPU the driver sees, or the GPUs listed.
enum DeviceChoice: ExpressibleByArgument, Equatable {
    case cpu
    case everyGPU
    case gpus([Int])

    init?(argument: String) {
        switch argument {
        case "cpu": self = .cpu
        case "cuda": self = .everyGPU
        default:
            // cuda:N[,M…]: each index read as the device cuda:N.
            guard argument.hasPrefix("cuda:") else { return nil }
            let devices = argument.dropFirst(5).split(separator: ",", omittingEmptySubsequences: false).map { Device("cuda:\($0)") }
            let indices = devices.compactMap { device -> Int? in if case .cuda(let index) = device { index } else { nil } }
            guard indices.count == devices.count, Set(indices).count == indices.count else { return nil }
            self = .gpus(indices)
        }
    }

    /// The choice as it is written on the command line.
    var argument: String {
        switch self {
        case .cpu: "cpu"
        case .everyGPU: "cuda"
        case .gpus(let indices): "cuda:" + indices.map(String.init).joined(separator: ",")
        }
    }

    var defaultValueDescription: String { argument }
}

/// How the engine runs.
struct EngineSelection: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The inference engine: openvino (fast), onnxruntime (the Python tutorials' engine) or opencv.",
        discussion: "Default: openvino on the CPU, onnxruntime on CUDA.", valueName: "engine"))
    var engine: EngineKind?

    @Option(help: ArgumentHelp(
        "Where the network runs: cpu, cuda (every GPU), or cuda:N[,M…].",
        discussion: """
            CUDA runs ONNX Runtime's CUDA execution provider, installed by tools/setup.sh --cuda. The pool starts one worker \
            per GPU (--workers spreads more over them), each pinned to its own CPU for its host threads, and leaves the other \
            CPUs to the front for decoding. Each worker pins the shared-memory slots for DMA.
            """))
    var device: DeviceChoice = .cpu

    @Option(help: "Intra-op threads per engine; 0: every CPU in process, or CPUs ÷ workers in the pool.")
    var threads: Int = 0

    @Option(help: "Inference precision: default (the engine's choice: bf16 on CPUs that have it), f32, bf16 or f16. The opencv engine runs f32 only.")
    var precision: Precision = .automatic

    @Option(help: "Where OpenVINO caches compiled models, so later starts skip compilation.")
    var cacheDir: String?

    @Flag(help: "Compile the model afresh on every start.")
    var noCache = false

    @Flag(inversion: .prefixedNo, help: "ONNX Runtime: let idle intra-op threads spin for work (its default) rather than sleep.")
    var spinning = true

    func validate() throws {
        guard threads >= 0 else { throw ValidationError("--threads must be 0 or more") }
        if device != .cpu, let engine, engine != .onnxruntime {
            throw ValidationError("--device cuda runs ONNX Runtime's CUDA execution provider: leave out --engine \(engine.rawValue), or say --engine onnxruntime")
        }
    }

    /// The engine, resolved from the device when not named.
    var kind: EngineKind { engine ?? (device == .cpu ? .openvino : .onnxruntime) }

    /// The engine's options and the devices its workers spread over. For CUDA this checks the
    /// machine first (driver, GPUs, set-up's libraries), so a missing piece is one line at
    /// start rather than a worker that cannot start.
    func resolved() throws -> (options: EngineOptions, devices: [Device]) {
        let cache = noCache ? nil : cacheDir.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? EngineOptions.defaultCacheDirectory()
        var options = EngineOptions(kind: kind, threads: threads, precision: precision, cacheDirectory: cache, spinning: spinning)
        let devices: [Device]
        switch device {
        case .cpu: devices = [.cpu]
        case .everyGPU: devices = try CUDAEnvironment().check(devices: nil).map { .cuda($0.index) }
        case .gpus(let indices): devices = try CUDAEnvironment().check(devices: indices).map { .cuda($0.index) }
        }
        options.device = devices[0]
        return (options, devices)
    }
}

/// Lines for people go to standard error, so standard output stays clean for data.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A warning for models whose scores say nothing about the image, on standard error unless
/// `warn` takes it (the server's log).
func warnIfSynthetic(_ manifest: ModelManifest, warn: (String) -> Void = { printError("warning: \($0)") }) {
    if manifest.weights == .synthetic {
        warn("\(manifest.name) carries synthetic weights: its classes are meaningless. Use it to measure speed, not to classify.")
    }
}

/// The shape of the worker pool.
struct PoolSelection: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Worker processes, each pinned to its own CPUs.",
        discussion: """
            Default: one worker per usable CPU, each with one engine thread (with --threads T: CPUs / T workers). \
            Usable CPUs are those of the affinity mask, fewer under a cgroup CPU quota (a container's CPU limit): \
            a quota of Q CPUs sizes the pool for ⌊Q⌋ and lets the workers share the mask's CPUs instead of pinning each.
            """))
    var workers: Int?

    @Option(help: ArgumentHelp(
        "The most images packed into one inference; 1 sends each image on its own.",
        discussion: """
            Default: \(PoolSelection.cpuMaxBatch) on the CPU, \(PoolSelection.gpuMaxBatch) on a GPU. Batches form only while every worker \
            is busy: a worker with nothing to do takes a lone image at once (dynamic batching), so a batch costs no \
            latency at low load. On the CPU, 4 runs a light model for less CPU per image under full load \
            (EfficientNet-Lite0: 3–10 % more images/s), but images that share a batch wait for its slowest, \
            which raises the tail at moderate load (ResNet-50's p99 by a third, for no gain).
            """))
    var maxBatch: Int?

    @Option(help: "Milliseconds a partly filled batch waits for more images while every worker is busy.")
    var batchDelay: Double = 2

    @Option(help: "Replace each worker after it has run this many batches.")
    var maxRequestsPerWorker: Int?

    @Option(help: ArgumentHelp(
        "Batches a worker holds at once: 1 or 2 (default).",
        discussion: """
            2 queues one batch behind the running one, so a worker never waits for the front between batches. \
            1 hands a batch over only when a worker is free, so none waits behind a busy worker while another idles; \
            on 2 CPUs it gave the higher p99 at 70 % load (docs/PERFORMANCE.md).
            """))
    var workerQueueDepth: Int?

    @Option(name: .customLong("front-cpus"), help: ArgumentHelp(
        "CPUs kept for the front's decoding and HTTP: the last N of the affinity mask.",
        discussion: """
            The front's threads are pinned to them and the workers placed on the others. Default 0: the front \
            runs on every CPU beside the pinned workers, which is faster on 2 CPUs (docs/PERFORMANCE.md).
            """))
    var frontCPUs: Int = 0

    @Flag(help: "Allow workers × threads above the CPU count (their CPU sets then overlap).")
    var oversubscribe = false

    @Flag(help: ArgumentHelp(
        "Lock the shared-memory slots in RAM in every CPU worker (mlock), so none is swapped out or faulted in under a batch.",
        discussion: "GPU workers always pin them, for DMA. Needs RLIMIT_MEMLOCK above the arena's size, or root."))
    var lockSlots = false

    func validate() throws {
        guard workers.map({ $0 >= 1 }) ?? true else { throw ValidationError("--workers must be at least 1") }
        guard maxBatch.map({ (1...PoolConfiguration.maxBatchLimit).contains($0) }) ?? true else {
            throw ValidationError("--max-batch must be between 1 and \(PoolConfiguration.maxBatchLimit)")
        }
        let usable = CPUBudget.current().count
        guard frontCPUs >= 0, frontCPUs < usable else {
            throw ValidationError("--front-cpus must leave at least one of the \(usable) usable CPUs to the workers")
        }
        guard workerQueueDepth.map({ (1...PoolConfiguration.depthPerWorker).contains($0) }) ?? true else {
            throw ValidationError("--worker-queue-depth must be 1 or \(PoolConfiguration.depthPerWorker)")
        }
        guard batchDelay >= 0 else { throw ValidationError("--batch-delay must not be negative") }
        guard maxRequestsPerWorker.map({ $0 >= 1 }) ?? true else { throw ValidationError("--max-requests-per-worker must be at least 1") }
    }

    /// The batch a GPU worker is sent by default: the most the pool warms, since a GPU's
    /// time per image falls with the batch and the batch delay caps the wait.
    static let gpuMaxBatch = PoolConfiguration.maxBatchLimit

    /// The batch a CPU worker is sent by default: one image, as Triton, TorchServe and OVMS do
    /// unless told otherwise. Batches of 4 pay on a light model under full load (EfficientNet-Lite0
    /// on OpenVINO, 5–10 % less worker CPU per image) but not on a heavy one (ResNet-50 about
    /// even), and at moderate load they cost both a longer tail (ResNet-50's p99 at 40 % load 74–87
    /// → 109–112 ms; docs/PERFORMANCE.md): a trade for the user to choose with `--max-batch`.
    static let cpuMaxBatch = 1

    /// Workers and threads from what was given (`threads` 0: not given): pinned single-thread
    /// workers by default, since two pinned 1-thread engines outrun one 2-thread engine
    /// (docs/PERFORMANCE.md); with only one of the two, the other fills the available CPUs.
    /// On GPUs, one worker per GPU with one host thread: the other CPUs decode.
    func shape(threads: Int, gpus: Int = 0) -> (workers: Int, threads: Int) {
        if gpus > 0 { return (workers ?? gpus, max(threads, 1)) }
        let cpus = max(1, CPUBudget.current().count - frontCPUs)
        let threads = threads > 0 ? threads : max(1, cpus / (workers ?? cpus))
        return (workers ?? max(1, cpus / threads), threads)
    }

    func batch(on device: Device) -> Int { maxBatch ?? (device.isGPU ? Self.gpuMaxBatch : Self.cpuMaxBatch) }

    func configuration(entry: CatalogEntry, engine: EngineSelection) throws -> PoolConfiguration {
        let (options, devices) = try engine.resolved()
        let (workers, threads) = shape(threads: engine.threads, gpus: options.device.isGPU ? devices.count : 0)
        var configuration = try PoolConfiguration(
            entry: entry, engine: options, workers: workers, threadsPerWorker: threads,
            maxBatch: batch(on: options.device), batchDelay: .microseconds(Int64(batchDelay * 1000)))
        configuration.devices = devices
        configuration.maxRequestsPerWorker = maxRequestsPerWorker
        configuration.oversubscribe = oversubscribe
        configuration.lockSlots = lockSlots
        configuration.workerQueueDepth = workerQueueDepth
        configuration.frontCPUs = frontCPUs
        return configuration
    }
}
