import Glibc

/// Which CPUs each worker runs on. Disjoint sets matter: two unpinned OpenVINO workers on
/// two cores reach half the throughput of two pinned ones (docs/PERFORMANCE.md), so the pool never
/// leaves placement to the scheduler.
public enum CPUPlacement {
    /// `workers` sets of `threads` CPUs each, disjoint while they fit; with `oversubscribe`
    /// they wrap around the available CPUs instead of being refused.
    public static func plan(workers: Int, threads: Int, available: [Int], oversubscribe: Bool) throws(PoolError) -> [[Int]] {
        guard workers >= 1, threads >= 1 else { throw .invalidConfiguration("workers and threads must be at least 1") }
        guard !available.isEmpty else { throw .invalidConfiguration("no CPU is available to this process") }
        let needed = workers * threads
        if needed > available.count && !oversubscribe {
            throw .invalidConfiguration(
                "\(workers) workers × \(threads) threads need \(needed) CPUs but \(available.count) are available; use fewer, or allow oversubscription")
        }
        return (0..<workers).map { worker in (0..<threads).map { available[(worker * threads + $0) % available.count] } }
    }
}
