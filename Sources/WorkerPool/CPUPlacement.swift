import Glibc

/// Which CPUs each worker runs on. Disjoint sets matter: two unpinned OpenVINO workers on
/// two cores reach half the throughput of two pinned ones (docs/PERFORMANCE.md), so the pool never
/// leaves placement to the scheduler.
public enum CPUPlacement {
    /// The CPUs left to workers and those kept for the front: the last `frontCPUs` of
    /// `available` (none kept: the front shares every CPU with the workers).
    public static func split(_ available: [Int], frontCPUs: Int) throws(PoolError) -> (workers: [Int], front: [Int]) {
        guard frontCPUs >= 0, frontCPUs < available.count else {
            throw .invalidConfiguration("keeping \(frontCPUs) CPUs for the front leaves none to the workers: \(available.count) are available")
        }
        return (Array(available.dropLast(frontCPUs)), Array(available.suffix(frontCPUs)))
    }

    /// `workers` sets of `threads` CPUs each, disjoint while they fit; with `oversubscribe`
    /// they wrap around the available CPUs instead of being refused. Under a CPU quota tighter
    /// than the mask (`quotaBound`) every worker gets the whole mask: its CPUs are shared with
    /// other processes then (a pod on a busy node), and pinning each worker to one of them
    /// would pile every replica's first worker onto the same CPU.
    public static func plan(workers: Int, threads: Int, available: [Int], oversubscribe: Bool, quotaBound: Bool = false) throws(PoolError) -> [[Int]] {
        guard workers >= 1, threads >= 1 else { throw .invalidConfiguration("workers and threads must be at least 1") }
        guard !available.isEmpty else { throw .invalidConfiguration("no CPU is available to this process") }
        if quotaBound { return Array(repeating: available, count: workers) }
        let needed = workers * threads
        if needed > available.count && !oversubscribe {
            throw .invalidConfiguration(
                "\(workers) workers × \(threads) threads need \(needed) CPUs but \(available.count) are available; use fewer, or allow oversubscription")
        }
        return (0..<workers).map { worker in (0..<threads).map { available[(worker * threads + $0) % available.count] } }
    }
}
