import CLinuxShims
import Foundation

/// What `/proc` says about processes and the machine.
enum ProcessTable {
    /// The pid of the process listening on `socketPath` (`SO_PEERCRED`), or nil if nothing answers.
    static func peerPID(socketPath: String) -> Int32? {
        let fd = CLinuxShims_connect_unix(socketPath)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        let pid = CLinuxShims_peer_pid(fd)
        return pid > 0 ? pid : nil
    }

    static let clockTicksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// `/proc/PID/stat`: the parent and the CPU seconds used (user + system), or nil once it is gone.
    static func stat(_ pid: Int32) -> (parent: Int32, cpuSeconds: Double)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")")
        else { return nil }
        // After the command name: state, ppid, … utime and stime are fields 14 and 15 of the whole line.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let parent = Int32(fields[1]), let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (parent, (user + system) / clockTicksPerSecond)
    }

    /// `VmHWM` (peak resident set) from `/proc/PID/status`, in bytes.
    static func peakResidentBytes(_ pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        return kilobytes * 1024
    }

    /// The processes whose parent is `pid`.
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { stat($0)?.parent == pid }.sorted()
    }

    /// Busy and total CPU time of the whole machine from `/proc/stat`, in clock ticks.
    static func machineTicks() -> (busy: Double, total: Double)? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return nil }
        let values = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard values.count >= 5 else { return nil }
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let total = values.prefix(8).reduce(0, +)
        return (total - values[3] - values[4], total)
    }
}
