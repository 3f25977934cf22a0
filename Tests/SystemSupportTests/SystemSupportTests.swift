import CLinuxShims
import Foundation
import Synchronization
@testable import SystemSupport
import Testing

@Suite struct ProcessorTests {
    /// A thread pinned to one CPU (its own affinity, as `taskset` would set it) sees only that CPU.
    @Test func availableCPUsComeFromTheAffinityMask() throws {
        let all = availableCPUs()
        let chosen = try #require(all.last)
        let seen = Mutex<[Int]?>(nil)
        let thread = Thread {
            var cpu = Int32(chosen)
            guard CLinuxShims_set_affinity(0, &cpu, 1) == 0 else { return }
            seen.withLock { $0 = availableCPUs() }
        }
        thread.start()
        while !thread.isFinished { usleep(1_000) }
        #expect(seen.withLock { $0 } == [chosen], "a thread pinned to CPU \(chosen) of \(all)")
        #expect(!all.isEmpty && all == all.sorted())
    }
}

@Suite struct ClockTests {
    @Test func durationsInSeconds() {
        #expect(Duration.milliseconds(1500).seconds == 1.5)
        #expect(abs(Duration.nanoseconds(-250).seconds + 250e-9) < 1e-15)
    }

    /// The clock the front and the workers share moves forward with real time.
    @Test func theMonotonicClockFollowsSleeps() {
        let before = monotonicNanoseconds()
        usleep(20_000)
        #expect(monotonicNanoseconds() - before >= 20_000_000)
    }
}

@Suite struct CPUQuotaTests {
    /// A host with cgroup v1's cpu controller beside an empty v2 hierarchy, as on this
    /// project's build machines: the limit set on a parent binds the process's own group.
    static let hybridMounts = """
        30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
        33 30 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """
    static let hybridMembership = "3:cpuacct:/\n2:cpu:/batch/job\n0::/\n"

    @Test func version1TakesTheTightestLimitOnTheWayUp() {
        let files = [
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
            "/sys/fs/cgroup/cpu/batch/cpu.cfs_quota_us": "150000\n", "/sys/fs/cgroup/cpu/batch/cpu.cfs_period_us": "100000\n",
            "/sys/fs/cgroup/cpu/batch/job/cpu.cfs_quota_us": "400000\n", "/sys/fs/cgroup/cpu/batch/job/cpu.cfs_period_us": "100000\n",
        ]
        let quota = CPUQuota.tightest(mountinfo: Self.hybridMounts, cgroups: Self.hybridMembership) { files[$0] }
        #expect(quota?.cpus == 1.5)
        #expect(quota?.source.hasPrefix("/sys/fs/cgroup/cpu/batch/cpu.cfs_quota_us 150000") == true)
    }

    /// Inside a container the hierarchy is mounted at its own group: mountinfo's root and the
    /// process's path are the same, and cpu.max sits at the mount point.
    @Test func version2InsideAContainer() {
        let mounts = "40 39 0:30 /kubepods/pod1/c1 /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw,nsdelegate\n"
        let membership = "0::/kubepods/pod1/c1\n"
        let files = ["/sys/fs/cgroup/cpu.max": "200000 100000\n"]
        #expect(CPUQuota.tightest(mountinfo: mounts, cgroups: membership) { files[$0] }?.cpus == 2)
        #expect(CPUQuota.tightest(mountinfo: mounts, cgroups: membership) { _ in "max 100000\n" } == nil)
    }

    @Test func noLimitAnywhereIsNil() {
        #expect(CPUQuota.tightest(mountinfo: Self.hybridMounts, cgroups: Self.hybridMembership) { $0.hasSuffix("quota_us") ? "-1" : "100000" } == nil)
        #expect(CPUQuota.tightest(mountinfo: "", cgroups: Self.hybridMembership) { _ in "100000" } == nil)
    }

    @Test func mountPathsAreUnescaped() {
        let mounts = #"50 30 0:27 / /mnt/cpu\040groups rw - cgroup cgroup rw,cpu,cpuacct"# + "\n"
        #expect(CgroupMount.parse(mounts, controller: "cpu") == [CgroupMount(root: "/", point: "/mnt/cpu groups", isVersion2: false)])
        #expect(CgroupMount.parse(mounts, controller: "memory").isEmpty)
    }

    /// The memory budget's default comes from the tightest memory limit, v1 or v2.
    @Test func memoryLimitsV1AndV2() {
        let v1 = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        let files = ["/sys/fs/cgroup/memory/jobs/memory.limit_in_bytes": "2147483648\n", "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"]
        #expect(Cgroups.memoryLimitBytes(mountinfo: v1, cgroups: "4:memory:/jobs\n") { files[$0] } == 2 << 30)
        let v2 = "40 39 0:30 / /sys/fs/cgroup ro - cgroup2 cgroup rw\n"
        #expect(Cgroups.memoryLimitBytes(mountinfo: v2, cgroups: "0::/\n") { $0 == "/sys/fs/cgroup/memory.max" ? "536870912\n" : nil } == 512 << 20)
        #expect(Cgroups.memoryLimitBytes(mountinfo: v2, cgroups: "0::/\n") { _ in "max\n" } == nil)
    }

    @Test(arguments: [(nil, 4), (0.5, 1), (1.0, 1), (1.5, 1), (2.0, 2), (16.0, 4)] as [(Double?, Int)])
    func theBudgetIsTheMaskOrTheWholeQuota(quota: Double?, expected: Int) {
        let budget = CPUBudget(mask: [0, 1, 2, 3], quota: quota.map { CPUQuota(cpus: $0, source: "test") })
        #expect(budget.count == expected)
        #expect(budget.isQuotaBound == (expected < 4))
    }

    @Test func cpuListsAreWrittenAsRanges() {
        #expect(CPUList([0, 1, 2, 3, 8, 10, 11]).description == "0-3,8,10-11")
        #expect(CPUList([5]).description == "5")
    }
}
