import Foundation
import ImagePipeline
import InferenceEngines
import ModelCatalog
import WorkerPool

/// Classifies images on a pool of worker processes: this process decodes each image straight
/// into a shared-memory slot, a worker runs the batch in place, and the top classes are read
/// from the slot.
public final class PoolClassifier: Sendable {
    public let entry: CatalogEntry
    public let pool: WorkerPool
    public let spec: PreprocessSpec
    private let labels: [String]

    /// Starts the pool's workers and waits until every one is ready.
    public convenience init(entry: CatalogEntry, configuration: PoolConfiguration, decoder: DecoderSettings = DecoderSettings()) async throws {
        try self.init(unstarted: entry, configuration: configuration, decoder: decoder)
        try await pool.start()
    }

    /// A classifier whose pool is not started yet: a server binds first and reports itself
    /// not ready until `pool.start()` returns.
    public init(unstarted entry: CatalogEntry, configuration: PoolConfiguration, decoder: DecoderSettings = DecoderSettings()) throws {
        self.entry = entry
        labels = try entry.labels()
        spec = PreprocessSpec(entry.manifest.preprocessing, decoder: decoder)
        pool = try WorkerPool(configuration: configuration)
    }

    /// The top classes of one sample's scores.
    public func scoredClasses(_ scores: UnsafeBufferPointer<Float>, k: Int) -> [ScoredClass] {
        topClasses(scores: scores, kind: entry.manifest.output.kind, labels: labels, k: k)
    }

    public func classify(_ image: Data, top k: Int) async throws(ClassificationError) -> Classification {
        let start = ContinuousClock.now
        do {
            var report: PreprocessReport?
            return try await pool.infer(
                prepare: { tensor in report = try ModelInput.image(image).write(into: tensor, spec: spec) },
                consume: { scores, receipt in
                    Classification(
                        top: scoredClasses(scores, k: k), image: report!, stages: StageTimes(report!).merging(receipt.stages),
                        totalSeconds: (ContinuousClock.now - start).seconds)
                })
        } catch let error as ImageDecodingError {
            throw .image(error)
        } catch let error as PoolError {
            throw .pool(error)
        } catch {
            throw .pool(.inferenceFailed("\(error)"))
        }
    }

    public func shutdown() async {
        await pool.shutdown()
    }
}

extension InferenceReceipt {
    /// The pool's stages of a batch: waiting in the front for a slot and for a worker, and in
    /// the worker's socket (all queueing), the engine, and the reply's way back.
    public var stages: StageTimes {
        StageTimes([.queue: slotWaitSeconds + queueSeconds + toWorkerSeconds, .inference: inferenceSeconds, .handoff: fromWorkerSeconds])
    }
}

extension PoolConfiguration {
    /// A pool for a catalog model.
    public init(entry: CatalogEntry, engine: EngineOptions, workers: Int, threadsPerWorker: Int, maxBatch: Int = 1,
                batchDelay: Duration = .zero) throws {
        self.init(model: try EngineModel(entry: entry), engine: engine, workers: workers, threadsPerWorker: threadsPerWorker,
                  maxBatch: maxBatch, batchDelay: batchDelay)
    }
}
