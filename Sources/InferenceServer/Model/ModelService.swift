import Classification
import EngineInterface
import Foundation
import ImagePipeline
import ModelCatalog
import Synchronization
import WorkerPool

/// One served catalog model on its worker pool.
public final class ModelService: ServedModel {
    public let entry: CatalogEntry
    public let classifier: PoolClassifier
    public let maxSamplesPerRequest: Int
    public let version: String

    public init(entry: CatalogEntry, classifier: PoolClassifier, version: String = "1", maxSamplesPerRequest: Int = 64) {
        self.entry = entry
        self.classifier = classifier
        self.version = version
        self.maxSamplesPerRequest = maxSamplesPerRequest
    }

    /// Set by the first stop signal: readiness fails at once, while requests still in flight
    /// (or already on their way over open connections) are served.
    private let draining = Atomic(false)

    public var manifest: ModelManifest { entry.manifest }
    public var isReady: Bool { !draining.load(ordering: .relaxed) && classifier.pool.canServe }
    public var isLive: Bool { classifier.pool.status.isLive }
    public var acceptsInference: Bool { classifier.pool.canServe }
    public var poolStatus: PoolStatus { classifier.pool.status }
    public var engine: String { classifier.pool.configuration.engine.kind.rawValue }
    public var engineDescription: EngineDescription? { classifier.pool.status.workers.first { $0.ready }?.engine }

    public var readinessProblem: String {
        draining.load(ordering: .relaxed) ? "the server is stopping" : "the worker pool is \(classifier.pool.status.health)"
    }

    /// Readiness goes false from now on; nothing else changes.
    public func beginDraining() {
        draining.store(true, ordering: .relaxed)
    }

    /// Runs every sample through the pool at once (they may share batches).
    public func scores(for samples: [ModelInput], metrics: ServerMetrics) async throws -> (scores: [Float], stages: StageTimes) {
        let rows = try await withThrowingTaskGroup(of: (Int, [Float], StageTimes).self) { group in
            for index in 0..<samples.count {
                group.addTask { [classifier] in
                    var written = StageTimes()
                    return try await classifier.pool.infer(
                        prepare: { tensor in written = try samples[index].written(into: tensor, spec: classifier.spec) },
                        consume: { scores, receipt in
                            metrics.batch(size: receipt.batchSize)
                            return (index, Array(scores), written.merging(receipt.stages))
                        })
                }
            }
            return try await group.reduce(into: [([Float], StageTimes)](repeating: ([], StageTimes()), count: samples.count)) {
                $0[$1.0] = ($1.1, $1.2)
            }
        }
        precondition(rows.allSatisfy { $0.0.count == classes })
        return (rows.flatMap { $0.0 }, rows.reduce(StageTimes()) { $0.slowest($1.1) })
    }

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
