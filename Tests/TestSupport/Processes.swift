import Foundation
import Glibc

/// Waits until `condition` holds, for at most `seconds`.
public func eventually(within seconds: Double, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// Whether `pid` exists and has not exited (a zombie waiting for its new parent to reap it has).
public func isRunning(_ pid: Int32) -> Bool {
    guard let state = statFields(pid)?.first else { return false }
    return state != "Z" && state != "X"
}

/// The fields of /proc/PID/stat after the command name: state, parent pid, …
public func statFields(_ pid: Int32) -> [Substring]? {
    (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: ")").last?.split(separator: " ")
}

/// Processes whose parent is `parent`.
public func childrenOf(_ parent: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        guard let fields = statFields(pid), fields.count > 1 else { return false }
        return Int32(fields[1]) == parent
    }
}

/// The resident memory of `pid` in bytes: now (VmRSS in /proc/PID/status), or the most it
/// has ever had (`peak`: VmHWM, the high-water mark).
public func residentBytes(_ pid: Int32, peak: Bool = false) -> Int? {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let field = peak ? "VmHWM:" : "VmRSS:"
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }) else { return nil }
    return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
}

/// Kilobytes a process has locked in RAM (`VmLck` in /proc/PID/status; `pid` "self" for this one).
public func lockedKilobytes(pid: String = "self") -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmLck:") })
    else { return nil }
    return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
}

/// The CPUs a process may run on, from /proc/PID/status (`Cpus_allowed_list`); empty if it is gone.
public func allowedCPUs(_ pid: Int32) -> [Int] {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else { return [] }
    return line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces).split(separator: ",").flatMap { range -> [Int] in
        let bounds = range.split(separator: "-").compactMap { Int($0) }
        return bounds.isEmpty ? [] : Array(bounds[0]...bounds.last!)
    }
}

/// A TCP socket bound to an ephemeral port on 127.0.0.1, listening if asked, until it is
/// released: a port some other program holds, for tests of what a server does then.
public final class LoopbackPort {
    public let port: Int
    private let fd: Int32

    public init(listening: Bool) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && (!listening || listen(fd, 1) == 0) && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw HarnessError("no free loopback port")
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
public func freeLoopbackPort() throws -> Int {
    try LoopbackPort(listening: false).port
}

/// The HTTP status curl gets for `url` (0: no answer within `timeout` seconds).
public func httpStatus(_ url: String, timeout: Double = 10) throws -> Int {
    let curl = Process()
    curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    curl.arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", String(timeout), url]
    let output = Pipe()
    curl.standardOutput = output
    try curl.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    curl.waitUntilExit()
    return Int(text) ?? 0
}
