import Glibc

/// `CLOCK_MONOTONIC` in nanoseconds (`clock_gettime`): one clock that the front and its
/// workers read alike, so their timestamps in control messages can be subtracted.
public func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

extension Duration {
    /// This duration in seconds, as a Double, for reports and metrics.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
