import CLinuxShims
import Glibc
import SystemPackage

/// The CPUs this process may run on: its affinity mask (`sched_getaffinity`), which `taskset`
/// and container runtimes set. Engines take their default thread count from it and the pool
/// its placement, so a process limited to some CPUs never plans for all of the machine's.
/// Falls back to the online CPUs if the mask cannot be read. `pid` asks for another process's.
public func availableCPUs(of pid: Int32 = 0) -> [Int] {
    var cpus = [Int32](repeating: 0, count: 1024)
    let count = CLinuxShims_get_affinity(pid, &cpus, cpus.count)
    return count > 0 ? cpus.prefix(Int(count)).map(Int.init) : Array(0..<sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// Pins every thread of this process to exactly `cpus` (`sched_setaffinity` per thread, via
/// /proc/self/task): a thread's affinity is its own, and runtimes start threads before `main`.
/// Threads started later inherit it.
public func pinThisProcess(to cpus: [Int]) throws(Errno) {
    let numbers = cpus.map(Int32.init)
    guard CLinuxShims_set_process_affinity(numbers, numbers.count) == 0 else { throw Errno(rawValue: errno) }
}
