import InferenceEngines
import Synchronization
import WorkerPool

/// A closed-loop measurement of the worker pool: `concurrency` requests always in flight,
/// each writing a pre-built tensor into its slot (where a decoder would write) and reading
/// its scores back.
public struct PoolBenchmarkResult: Codable, Sendable {
    public var workers: Int
    public var threadsPerWorker: Int
    public var maxBatch: Int
    public var concurrency: Int
    public var requests: Int
    public var seconds: Double
    public var imagesPerSecond: Double
    /// Per request, from reserving a slot to reading the scores.
    public var latency: LatencySummary
    /// The engine's own time per batch, as the worker measured it.
    public var inference: LatencySummary
    /// From the tensor being written to the scores being readable, less inference: what the
    /// queue, the control socket and the wake-ups cost.
    public var overhead: LatencySummary
    /// Where the overhead goes, per request: waiting for a worker, the run message reaching
    /// it, the reply reaching the front, and the waiting request being woken.
    public var hops: Hops
    /// How many requests rode in batches of each size.
    public var batchSizes: [String: Int]
}

public struct Hops: Codable, Sendable {
    public var queue: LatencySummary
    public var toWorker: LatencySummary
    public var fromWorker: LatencySummary
    public var wake: LatencySummary
}

public enum PoolBenchmark {
    public static func run(
        pool: WorkerPool, concurrency: Int, warmUp: Duration, duration: Duration, progress: @escaping @Sendable (Double) -> Void = { _ in }
    ) async throws -> PoolBenchmarkResult {
        let sampleCount = pool.configuration.model.sampleInputCount
        // A smooth pattern in the range of normalized pixels, the same on every run.
        let tensor = (0..<sampleCount).map { Float(($0 * 7919) % 2001) / 1000 - 1 }
        let clock = ContinuousClock()
        let warmUpEnd = clock.now + warmUp
        let end = warmUpEnd + duration
        let recorders = SharedRecorders()

        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<concurrency {
                group.addTask {
                    while true {
                        let start = clock.now
                        guard start < end else { return }
                        var prepared = start
                        let receipt = try await pool.infer(
                            prepare: { slot in
                                _ = slot.initialize(from: tensor)
                                prepared = clock.now
                            },
                            consume: { _, receipt in receipt })
                        let finished = clock.now
                        let woken = monotonicNanoseconds()
                        guard start >= warmUpEnd else { continue }
                        recorders.state.withLock {
                            $0.record(start: start, prepared: prepared, finished: finished, woken: woken, receipt: receipt)
                        }
                        if client == 0 { progress(min(1, (finished - warmUpEnd).seconds / duration.seconds)) }
                    }
                }
            }
            try await group.waitForAll()
        }
        return recorders.state.withLock { recorders in
            let seconds = recorders.lastFinish.map { ($0 - warmUpEnd).seconds } ?? duration.seconds
            return PoolBenchmarkResult(
                workers: pool.configuration.workers, threadsPerWorker: pool.configuration.threadsPerWorker,
                maxBatch: pool.configuration.maxBatch, concurrency: concurrency, requests: recorders.latency.count, seconds: seconds,
                imagesPerSecond: Double(recorders.latency.count) / seconds, latency: recorders.latency.summary,
                inference: recorders.inference.summary, overhead: recorders.overhead.summary,
                hops: Hops(
                    queue: recorders.queue.summary, toWorker: recorders.toWorker.summary, fromWorker: recorders.fromWorker.summary,
                    wake: recorders.wake.summary),
                batchSizes: Dictionary(uniqueKeysWithValues: recorders.batchSizes.map { (String($0.key), $0.value) }))
        }
    }

    private final class SharedRecorders: Sendable {
        let state = Mutex(Recorders())
    }

    private struct Recorders {
        var latency = LatencyRecorder()
        var inference = LatencyRecorder()
        var overhead = LatencyRecorder()
        var queue = LatencyRecorder()
        var toWorker = LatencyRecorder()
        var fromWorker = LatencyRecorder()
        var wake = LatencyRecorder()
        var batchSizes: [Int: Int] = [:]
        var lastFinish: ContinuousClock.Instant?

        mutating func record(
            start: ContinuousClock.Instant, prepared: ContinuousClock.Instant, finished: ContinuousClock.Instant, woken: UInt64,
            receipt: InferenceReceipt
        ) {
            queue.record(seconds: receipt.queueSeconds)
            toWorker.record(seconds: receipt.toWorkerSeconds)
            fromWorker.record(seconds: receipt.fromWorkerSeconds)
            wake.record(seconds: woken > receipt.completedAt ? Double(woken - receipt.completedAt) / 1e9 : 0)
            latency.record(seconds: (finished - start).seconds)
            inference.record(seconds: receipt.inferenceSeconds)
            overhead.record(seconds: max(0, (finished - prepared).seconds - receipt.inferenceSeconds))
            batchSizes[receipt.batchSize, default: 0] += 1
            lastFinish = max(lastFinish ?? finished, finished)
        }
    }
}
