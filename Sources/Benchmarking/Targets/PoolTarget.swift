import Classification
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
        var written = StageTimes()
        let receipt = try await pool.infer(
            prepare: { slot in written = try items[0].payload.written(into: slot, spec: spec) },
            consume: { _, receipt in receipt })
        let woken = monotonicNanoseconds()
        // The request is woken after the reply is in: that is hand-off too.
        let wake = StageTimes([.handoff: woken > receipt.completedAt ? Double(woken - receipt.completedAt) / 1e9 : 0])
        return written.merging(receipt.stages).merging(wake)
    }

    public func servingProcesses() -> ServingProcesses {
        ServingProcesses(front: getpid(), workers: pool.status.workers.map(\.pid))
    }
}
