import CLinuxShims
import Foundation
import Synchronization
import SystemSupport
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
