import Foundation

/// The CPU time this process's cgroups allow, as a number of CPUs: a container's or a
/// Kubernetes pod's CPU limit is a CFS quota (`cpu.max` in cgroup v2, `cpu.cfs_quota_us` ÷
/// `cpu.cfs_period_us` in v1), not an affinity mask, so a pod limited to 2 CPUs on a 64-CPU
/// node still sees 64 CPUs in its mask. Sizing the pool for the mask there would start 64
/// workers that the kernel throttles in turn.
public struct CPUQuota: Sendable, Equatable, CustomStringConvertible {
    /// Quota ÷ period: 1.5 means one and a half CPUs' worth of time per period.
    public let cpus: Double
    /// The file the tightest limit came from, for the log.
    public let source: String

    public init(cpus: Double, source: String) {
        self.cpus = cpus
        self.source = source
    }

    public var description: String { "\(cpus.formatted(.number.precision(.fractionLength(0...2)))) CPUs (\(source))" }

    /// The tightest CPU quota on the way from this process's cgroup up to the root of each
    /// mounted cpu hierarchy (v1 and v2 alike, since a limit on a parent binds its children);
    /// nil when nothing is limited or nothing can be read.
    public static func current() -> CPUQuota? {
        Cgroups.current { tightest(mountinfo: $0, cgroups: $1, read: $2) }
    }

    /// `current()` over given texts and a file reader, so that the parsing is testable.
    public static func tightest(mountinfo: String, cgroups: String, read: (String) -> String?) -> CPUQuota? {
        Cgroups.limits(controller: "cpu", mountinfo: mountinfo, cgroups: cgroups) { directory, isVersion2 in
            isVersion2 ? version2Limit(in: directory, read: read) : version1Limit(in: directory, read: read)
        }.min { $0.cpus < $1.cpus }
    }

    /// `cpu.max`: "QUOTA PERIOD", or "max PERIOD" when unlimited.
    static func version2Limit(in directory: String, read: (String) -> String?) -> CPUQuota? {
        let file = directory + "/cpu.max"
        guard let fields = read(file)?.split(whereSeparator: \.isWhitespace), fields.count == 2,
              let quota = Double(fields[0]), let period = Double(fields[1]), quota > 0, period > 0
        else { return nil }
        return CPUQuota(cpus: quota / period, source: "\(file): \(fields[0]) \(fields[1])")
    }

    /// `cpu.cfs_quota_us` (-1 when unlimited) over `cpu.cfs_period_us`.
    static func version1Limit(in directory: String, read: (String) -> String?) -> CPUQuota? {
        let quotaFile = directory + "/cpu.cfs_quota_us", periodFile = directory + "/cpu.cfs_period_us"
        guard let quotaText = read(quotaFile)?.trimmingCharacters(in: .whitespacesAndNewlines), let quota = Double(quotaText), quota > 0,
              let periodText = read(periodFile)?.trimmingCharacters(in: .whitespacesAndNewlines), let period = Double(periodText), period > 0
        else { return nil }
        return CPUQuota(cpus: quota / period, source: "\(quotaFile) \(quotaText) / cpu.cfs_period_us \(periodText)")
    }
}

/// What the pool and the engines size themselves for: the affinity mask's CPUs, fewer when a
/// cgroup quota allows less time than the mask has CPUs. A quota of 1.5 counts as 1, leaving
/// the half to the front, since a second busy worker would only be throttled.
public struct CPUBudget: Sendable, Equatable, CustomStringConvertible {
    /// The affinity mask: the only CPUs a thread may be pinned to.
    public let mask: [Int]
    public let quota: CPUQuota?

    public init(mask: [Int], quota: CPUQuota?) {
        self.mask = mask
        self.quota = quota
    }

    /// This process's mask and quota, read now.
    public static func current() -> CPUBudget { CPUBudget(mask: availableCPUs(), quota: CPUQuota.current()) }

    /// CPUs to size for: min(mask, ⌊quota⌋), at least one.
    public var count: Int {
        guard let quota else { return max(1, mask.count) }
        return max(1, min(mask.count, Int(quota.cpus.rounded(.down))))
    }

    /// Whether the quota, not the mask, sets the size: the mask's CPUs are then shared with
    /// other processes, and pinning a worker to one of them would not give it that CPU.
    public var isQuotaBound: Bool { count < mask.count }

    public var description: String {
        let cpus = "affinity mask \(CPUList(mask)) (\(mask.count) CPUs)"
        guard let quota else { return "\(cpus), no CPU quota: sizing for \(count) CPUs" }
        return "\(cpus), CPU quota \(quota): sizing for \(count) CPUs"
    }
}

/// CPU numbers as the kernel lists them: "0-3,8,10-11".
public struct CPUList: CustomStringConvertible {
    let cpus: [Int]
    public init(_ cpus: [Int]) { self.cpus = cpus.sorted() }

    public var description: String {
        var ranges: [String] = [], index = cpus.startIndex
        while index < cpus.endIndex {
            var end = index
            while end + 1 < cpus.endIndex, cpus[end + 1] == cpus[end] + 1 { end += 1 }
            ranges.append(end == index ? "\(cpus[index])" : "\(cpus[index])-\(cpus[end])")
            index = end + 1
        }
        return ranges.joined(separator: ",")
    }
}
