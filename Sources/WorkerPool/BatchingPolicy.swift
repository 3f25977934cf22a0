/// How the scheduler forms batches: how many samples one may hold, and how long an open batch
/// waits for more before it is sealed and run. A policy decides from what the scheduler knows
/// (the batch's size and age, how many batches wait for a worker); it does no I/O and keeps no
/// state, so a new one (adaptive batching, per-model limits) is a value the tests drive alone.
public protocol BatchingPolicy: Sendable {
    /// The most samples one batch holds; at most `PoolConfiguration.maxBatchLimit`.
    var maxBatch: Int { get }

    /// When a batch that opened at `opened` and now holds `size` samples (fewer than
    /// `maxBatch`) must be sealed; `queued` sealed batches wait for a worker (their samples still
    /// being written, or all written) and `idleWorkers` ready workers have nothing to run. A time
    /// at or before now seals it at once.
    func sealTime(opened: Nanoseconds, size: Int, queued: Int, idleWorkers: Int) -> Nanoseconds
}

/// Dynamic batching, as Triton's dynamic batcher does it: batches of up to `maxBatch`, sealed
/// at once while a worker is idle to take them (at low load a request never waits for
/// company), else when full or `delay` after they opened. Batches form only while every
/// worker is busy, which is when they pay: an engine runs a batch of four for less CPU than
/// four single images.
public struct DynamicBatching: BatchingPolicy, Equatable {
    public let maxBatch: Int
    public let delay: Duration

    public init(maxBatch: Int, delay: Duration) {
        self.maxBatch = maxBatch
        self.delay = delay
    }

    public func sealTime(opened: Nanoseconds, size: Int, queued: Int, idleWorkers: Int) -> Nanoseconds {
        idleWorkers > queued ? opened : opened + Nanoseconds(delay.nanoseconds)
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the scheduler's only clock, handed to it with every event
/// (`monotonicNanoseconds()` in the pool, plain numbers in tests).
public typealias Nanoseconds = UInt64

extension Duration {
    /// Whole nanoseconds, clamped at zero: the scheduler's unit.
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        return seconds < 0 ? 0 : UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }
}
