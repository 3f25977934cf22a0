import Classification
import EngineInterface
import Foundation
import ImagePipeline
import ModelCatalog
import Synchronization
import WorkerPool

/// One version of one model, loaded: its manifest and labels, and its own pool of workers.
public final class LoadedModel: Sendable {
    public let name: String
    public let version: String
    public let entry: CatalogEntry
    public let classifier: PoolClassifier
    public let maxSamplesPerRequest: Int
    /// What Triton's statistics extension reports: requests by outcome and where their time went.
    public let statistics = ModelStatistics()
    /// Set by the first stop signal: readiness fails at once, while requests still in flight
    /// (or already on their way over open connections) are served.
    private let draining = Atomic(false)

    public init(name: String, version: String, entry: CatalogEntry, classifier: PoolClassifier, maxSamplesPerRequest: Int = 64) {
        self.name = name
        self.version = version
        self.entry = entry
        self.classifier = classifier
        self.maxSamplesPerRequest = maxSamplesPerRequest
    }

    public var manifest: ModelManifest { entry.manifest }
    public var pool: WorkerPool { classifier.pool }
    public var isReady: Bool { !draining.load(ordering: .relaxed) && pool.canServe }
    public var isLive: Bool { pool.status.isLive }
    /// Whether inference is taken now: a stopping server still serves what reaches it.
    public var acceptsInference: Bool { pool.canServe }
    /// The engine the workers run (`openvino`, `onnxruntime`, `opencv`).
    public var engine: String { pool.configuration.engine.kind.rawValue }
    /// What the ready workers' engine runs as; nil before a worker is ready.
    public var engineDescription: EngineDescription? { pool.status.workers.first { $0.ready }?.engine }

    public var readinessProblem: String {
        draining.load(ordering: .relaxed) ? "the server is stopping" : "the worker pool is \(pool.status.health)"
    }

    /// Readiness fails from now on; nothing else changes.
    public func beginDraining() {
        draining.store(true, ordering: .relaxed)
    }

    /// Runs every sample through the pool at once (they may share batches): each sample's
    /// scores, row by row in order, and the slowest sample's time per stage. `onBatch` is told
    /// the size of each sample's batch.
    public func scores(for samples: [ModelInput], onBatch: @escaping @Sendable (Int) -> Void) async throws -> (scores: [Float], stages: StageTimes) {
        let classifier = self.classifier
        let rows = try await withThrowingTaskGroup(of: (Int, [Float], StageTimes).self) { group in
            for index in 0..<samples.count {
                group.addTask {
                    var written = StageTimes()
                    return try await classifier.pool.infer(
                        prepare: { tensor in written = try samples[index].written(into: tensor, spec: classifier.spec) },
                        consume: { scores, receipt in
                            onBatch(receipt.batchSize)
                            return (index, Array(scores), written.merging(receipt.stages))
                        })
                }
            }
            return try await group.reduce(into: [([Float], StageTimes)](repeating: ([], StageTimes()), count: samples.count)) {
                $0[$1.0] = ($1.1, $1.2)
            }
        }
        precondition(rows.allSatisfy { $0.0.count == manifest.output.classes })
        return (rows.flatMap { $0.0 }, rows.reduce(StageTimes()) { $0.slowest($1.1) })
    }

    /// Bytes decoding `samples` will hold in the front, read from the images' headers.
    public func decodingBytes(_ samples: [ModelInput]) -> Int {
        samples.reduce(0) { total, sample in
            guard case .image(let image) = sample else { return total }
            return total + image.withUnsafeBytes { ImagePreprocessor.workingBytes($0, spec: classifier.spec) }
        }
    }

    public func topClasses(_ scores: ArraySlice<Float>, k: Int) -> [ScoredClass] {
        Array(scores).withUnsafeBufferPointer { classifier.scoredClasses($0, k: k) }
    }
}

/// Triton's per-model statistics: requests by outcome with their cumulative time, and the time
/// they spent queued, preparing their input, in the engine and writing the reply. Executions by
/// batch size come from the pool (`PoolStatus.batches`).
public final class ModelStatistics: Sendable {
    /// A count and the nanoseconds it took, as Triton's `StatisticDuration`.
    public struct Duration: Sendable, Equatable {
        public var count = 0
        public var nanoseconds: UInt64 = 0

        mutating func add(_ seconds: Double) {
            count += 1
            nanoseconds += UInt64(max(0, seconds) * 1e9)
        }
    }

    public struct Snapshot: Sendable, Equatable {
        /// Samples inferred (a request of 8 images counts 8), and when the last request finished
        /// (milliseconds since 1970), 0 before any.
        public var inferenceCount = 0
        public var lastInference: UInt64 = 0
        public var success = Duration()
        public var fail = Duration()
        public var queue = Duration()
        public var computeInput = Duration()
        public var computeInfer = Duration()
        public var computeOutput = Duration()
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// One request answered: its `samples`, how long it took, and its stages in seconds.
    public func succeeded(samples: Int, seconds: Double, queue: Double, input: Double, inference: Double, output: Double) {
        state.withLock { state in
            state.inferenceCount += samples
            state.lastInference = UInt64(Date().timeIntervalSince1970 * 1000)
            state.success.add(seconds)
            state.queue.add(queue)
            state.computeInput.add(input)
            state.computeInfer.add(inference)
            state.computeOutput.add(output)
        }
    }

    /// One request that failed, and how long it took to.
    public func failed(seconds: Double) {
        state.withLock { $0.fail.add(seconds) }
    }
}
