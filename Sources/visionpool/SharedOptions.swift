import SystemSupport
import ArgumentParser
import Foundation
import InferenceEngines
import ModelCatalog
import Classification
import WorkerPool

extension EngineKind: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}
extension ModelManifest.Output.Kind: ExpressibleByArgument {}

/// Which catalog, and which model in it.
struct ModelSelection: ParsableArguments {
    @Option(help: "The model to run (see `visionpool models`).")
    var model: String = ModelCatalog.defaultModelName

    @Option(help: ArgumentHelp("The model catalog folder.", discussion: "Defaults to $VISIONPOOL_MODELS, else the first Models/ folder holding manifests beside the binary or above it (PREFIX/Models for PREFIX/bin/visionpool)."))
    var modelsDir: String?

    var catalog: ModelCatalog { Self.catalog(at: modelsDir) }

    static func catalog(at modelsDir: String?) -> ModelCatalog {
        ModelCatalog(directory: modelsDir.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? ModelCatalog.defaultDirectory())
    }
}

/// How the engine runs.
struct EngineSelection: ParsableArguments {
    @Option(help: "The inference engine: openvino (fast), onnxruntime (the Python tutorials' engine) or opencv.")
    var engine: EngineKind = .openvino

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
    }

    var options: EngineOptions {
        let cache = noCache ? nil : cacheDir.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? EngineOptions.defaultCacheDirectory()
        return EngineOptions(kind: engine, threads: threads, precision: precision, cacheDirectory: cache, spinning: spinning)
    }
}

/// Lines for people go to standard error, so standard output stays clean for data.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A warning for models whose scores say nothing about the image.
func warnIfSynthetic(_ manifest: ModelManifest) {
    if manifest.weights == .synthetic {
        printError("warning: \(manifest.name) carries synthetic weights: its classes are meaningless. Use it to measure speed, not to classify.")
    }
}

/// The shape of the worker pool.
struct PoolSelection: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Worker processes, each pinned to its own CPUs.",
        discussion: "Default: one worker per available CPU, each with one engine thread (with --threads T: CPUs / T workers)."))
    var workers: Int?

    @Option(help: "Images packed into one inference; 1 sends each image on its own.")
    var maxBatch: Int = 1

    @Option(help: "Milliseconds a partly filled batch waits for more images.")
    var batchDelay: Double = 2

    @Option(help: "Replace each worker after it has run this many batches.")
    var maxRequestsPerWorker: Int?

    @Flag(help: "Allow workers × threads above the CPU count (their CPU sets then overlap).")
    var oversubscribe = false

    func validate() throws {
        guard workers.map({ $0 >= 1 }) ?? true else { throw ValidationError("--workers must be at least 1") }
        guard (1...PoolConfiguration.maxBatchLimit).contains(maxBatch) else {
            throw ValidationError("--max-batch must be between 1 and \(PoolConfiguration.maxBatchLimit)")
        }
        guard batchDelay >= 0 else { throw ValidationError("--batch-delay must not be negative") }
        guard maxRequestsPerWorker.map({ $0 >= 1 }) ?? true else { throw ValidationError("--max-requests-per-worker must be at least 1") }
    }

    /// Workers and threads from what was given (`threads` 0: not given): pinned single-thread
    /// workers by default, since two pinned 1-thread engines outrun one 2-thread engine
    /// (docs/PERFORMANCE.md); with only one of the two, the other fills the available CPUs.
    func shape(threads: Int) -> (workers: Int, threads: Int) {
        let cpus = availableCPUs().count
        let threads = threads > 0 ? threads : max(1, cpus / (workers ?? cpus))
        return (workers ?? max(1, cpus / threads), threads)
    }

    func configuration(entry: CatalogEntry, engine: EngineSelection) throws -> PoolConfiguration {
        let (workers, threads) = shape(threads: engine.threads)
        var configuration = try PoolConfiguration(
            entry: entry, engine: engine.options, workers: workers, threadsPerWorker: threads,
            maxBatch: maxBatch, batchDelay: .microseconds(Int64(batchDelay * 1000)))
        configuration.maxRequestsPerWorker = maxRequestsPerWorker
        configuration.oversubscribe = oversubscribe
        return configuration
    }
}
