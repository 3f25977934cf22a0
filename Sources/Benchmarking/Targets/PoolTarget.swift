import SystemSupport
import Foundation
import ImagePipeline
import WorkerPool

/// The worker pool without HTTP: this process decodes (or copies a tensor) straight into a
/// shared-memory slot, a worker runs it, the scores are read back.
public struct PoolTarget: BenchTarget {
    public let pool: WorkerPool
    public let spec: PreprocessSpec
    public var imagesPerRequest: Int { 1 }

    public init(pool: WorkerPool, spec: PreprocessSpec) {
        self.pool = pool
        self.spec = spec
    }

    public func send(_ items: [WorkloadItem]) async throws -> StageTimes {
        var decode = 0.0
        let receipt = try await pool.infer(
            prepare: { slot in
                let start = ContinuousClock.now
                try write(items[0], into: slot, spec: spec)
                decode = (ContinuousClock.now - start).seconds
            },
            consume: { _, receipt in receipt })
        let woken = monotonicNanoseconds()
        let wake = woken > receipt.completedAt ? Double(woken - receipt.completedAt) / 1e9 : 0
        // A batch sent to a busy worker waits in its socket until the one before is done: that is queueing too.
        return [
            .queue: receipt.queueSeconds + receipt.toWorkerSeconds, .decode: decode, .inference: receipt.inferenceSeconds,
            .handoff: receipt.fromWorkerSeconds + wake,
        ]
    }

    public func servingProcesses() -> ServingProcesses {
        ServingProcesses(front: getpid(), workers: pool.status.workers.map(\.pid))
    }
}
