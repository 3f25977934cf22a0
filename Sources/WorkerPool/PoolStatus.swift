import EngineInterface

/// What a request learns about the batch that carried it.
public struct InferenceReceipt: Sendable, Equatable {
    public var workerPID: Int32
    public var slot: Int
    public var batchSize: Int
    /// Where the worker's engine says it read and wrote, as offsets into the arena, next to
    /// where this slot's tensors are: equal offsets mean the tensors were used in place.
    public var reportedInputOffset: Int
    public var reportedOutputOffset: Int
    public var slotInputOffset: Int
    public var slotOutputOffset: Int
    public var inferenceSeconds: Double
    /// How many workers this batch was sent to (2 after a crash and retry).
    public var attempts: Int
    /// The hops of the batch: waiting in the front for a free slot (back-pressure, before the
    /// sample was written), then for a worker, the run message reaching the worker, and its
    /// reply reaching the front.
    public var slotWaitSeconds: Double = 0
    public var queueSeconds: Double
    public var toWorkerSeconds: Double
    public var fromWorkerSeconds: Double
    /// CLOCK_MONOTONIC (`monotonicNanoseconds()`) when the front had the reply.
    public var completedAt: UInt64
}

/// A snapshot of the pool for status pages and tests.
public struct PoolStatus: Sendable {
    public enum Health: Equatable, Sendable, CustomStringConvertible {
        /// Workers are warming up for the first time.
        case starting
        case ready
        /// Workers crashed and are being replaced (with back-off); the ready ones serve.
        case degraded(String)
        /// The pool cannot recover by itself: it never started, or no worker has been ready
        /// for `livenessTimeout`. Liveness probes fail, so an orchestrator restarts the process.
        case failing(String)
        case stopping, stopped

        public var description: String {
            switch self {
            case .starting: "starting"
            case .ready: "ready"
            case .degraded(let reason): "degraded: \(reason)"
            case .failing(let reason): "failing: \(reason)"
            case .stopping: "stopping"
            case .stopped: "stopped"
            }
        }
    }

    public struct Worker: Sendable {
        public var pid: Int32
        public var seat: Int
        public var cpus: [Int]
        public var ready: Bool
        /// What the worker's engine reported running as when it became ready.
        public var engine: EngineDescription?
        public var batchesServed: Int
        /// Running a batch now.
        public var busy: Bool
    }

    public var health: Health
    public var workers: [Worker]
    /// Requests can be served now: some worker is ready and the pool takes requests.
    public var canServe: Bool
    /// False only when the pool cannot recover by itself.
    public var isLive: Bool {
        if case .failing = health { return false }
        return true
    }
    /// Workers replaced after a crash.
    public var restarts: Int
    public var queuedBatches: Int
    /// Batches run so far, by size.
    public var executions: [Int: Executions] = [:]

    /// How many batches of one size ran, and the engine's time for them.
    public struct Executions: Sendable, Equatable {
        public var count = 0
        public var inferenceNanoseconds: UInt64 = 0
    }

    /// The precisions the ready workers run at, e.g. "int8+bf16"; "?" before any is ready.
    public var precision: String {
        let reported = Set(workers.compactMap { $0.ready ? $0.engine?.precisionOnDevice : nil })
        return reported.isEmpty ? "?" : reported.sorted().joined(separator: "/")
    }

    /// Why the ready workers run below their engine's own choice of precision, if they do.
    public var precisionFallback: PrecisionFallback? {
        workers.lazy.compactMap { $0.ready ? $0.engine?.fallback : nil }.first
    }
}
