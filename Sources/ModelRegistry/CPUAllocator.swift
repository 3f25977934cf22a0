/// Which CPUs the workers of each model's pool run on, when several models share a server.
///
/// The rule, in load order: each worker takes, for each of its threads, the CPU of the mask
/// with the fewest workers on it (the lowest-numbered among equals). So pools get pinned,
/// disjoint CPUs while there are free ones, and once every CPU has a worker the next ones
/// share the least-used CPUs, evenly. A pool that is unloaded gives its CPUs back; pools
/// already running never move. Under a CPU quota tighter than the mask (a container's CPU
/// limit) the mask's CPUs are not the server's to divide: every worker shares the whole mask,
/// as a single pool's do.
public struct CPUAllocator: Sendable, CustomStringConvertible {
    public let cpus: [Int]
    public let sharesMask: Bool
    /// Workers pinned to each CPU of `cpus`, by position.
    public private(set) var workersOn: [Int]

    public init(cpus: [Int], sharesMask: Bool) {
        self.cpus = cpus
        self.sharesMask = sharesMask
        workersOn = Array(repeating: 0, count: cpus.count)
    }

    /// The CPU sets of a pool of `workers` workers with `threads` threads each, taken.
    public mutating func allocate(workers: Int, threads: Int) -> [[Int]] {
        guard !sharesMask else { return Array(repeating: cpus, count: workers) }
        return (0..<workers).map { _ in
            let chosen = cpus.indices.sorted { (workersOn[$0], $0) < (workersOn[$1], $1) }.prefix(min(threads, cpus.count)).sorted()
            for index in chosen { workersOn[index] += 1 }
            return chosen.map { cpus[$0] }
        }
    }

    /// Gives back what `allocate` took for a pool.
    public mutating func release(_ sets: [[Int]]) {
        guard !sharesMask else { return }
        for cpu in sets.joined() { if let index = cpus.firstIndex(of: cpu) { workersOn[index] = max(0, workersOn[index] - 1) } }
    }

    /// e.g. "CPU 0: 2 workers, CPU 1: 1 worker", or "every worker shares CPUs [0, 1] (CPU quota)".
    public var description: String {
        if sharesMask { return "every worker shares CPUs \(cpus) (a CPU quota below the mask)" }
        return zip(cpus, workersOn).map { "CPU \($0): \($1) worker\($1 == 1 ? "" : "s")" }.joined(separator: ", ")
    }
}
