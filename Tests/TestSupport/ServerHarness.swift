import Foundation
import Glibc

/// A real `visionpool serve` on a temporary Unix socket (two single-thread workers unless
/// `arguments` say otherwise), driven with curl.
public final class ServerHarness: @unchecked Sendable {
    public struct Reply: Sendable {
        public let status: Int
        public let body: Data
        public let headers: [String: String]

        public var json: [String: Any]? {
            let jsonLength = headers["inference-header-content-length"].flatMap(Int.init) ?? body.count
            return try? JSONSerialization.jsonObject(with: body.prefix(jsonLength)) as? [String: Any]
        }
    }

    public let directory: URL
    public let socket: String
    public let process = Process()
    public let log: URL

    /// Starts the server and waits until it reports ready. `pool` shapes the worker pool;
    /// `launcher` runs the server through another program (`taskset`, a shell that joins a
    /// cgroup), which must end by executing the command line it is given.
    public init(
        _ arguments: [String] = [], socket path: String? = nil, environment: [String: String] = [:], waitForReady: Bool = true,
        pool: [String] = ["--workers", "2", "--threads", "1"], launcher: [String] = []
    ) throws {
        directory = try Fixtures.temporaryDirectory()
        socket = path ?? directory.appendingPathComponent("visionpool.sock").path
        log = directory.appendingPathComponent("server.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let command = [TestPaths.executable.path, "serve", "--socket", socket] + pool + arguments
        process.executableURL = URL(fileURLWithPath: (launcher + command)[0])
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.arguments = Array((launcher + command).dropFirst())
        let output = try FileHandle(forWritingTo: log)
        process.standardOutput = output
        process.standardError = output
        try process.run()
        if waitForReady {
            let deadline = Date().addingTimeInterval(60)
            while (try? request("GET", "/v2/health/ready").status) != 200 {
                guard Date() < deadline, process.isRunning else { throw HarnessError("server did not become ready: \(logText)") }
                usleep(50_000)
            }
        }
    }

    public var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// One HTTP request over the Unix socket; with `hangUpAfter`, the client disconnects after
    /// that many seconds whether or not an answer came (status 0 then).
    public func request(_ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:], hangUpAfter: Double? = nil) throws -> Reply {
        let id = UUID().uuidString
        let bodyFile = directory.appendingPathComponent("\(id).body"), headerFile = directory.appendingPathComponent("\(id).headers")
        let requestFile = directory.appendingPathComponent("\(id).request")
        defer { [bodyFile, headerFile, requestFile].forEach { try? FileManager.default.removeItem(at: $0) } }
        var arguments = ["-s", "--path-as-is", "--unix-socket", socket, "-X", method, "-o", bodyFile.path, "-D", headerFile.path, "-w", "%{http_code}"]
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        if let hangUpAfter { arguments += ["--max-time", String(hangUpAfter)] }
        if let body {
            try body.write(to: requestFile)
            // No `Expect: 100-continue`: curl would wait a second for an answer the server does not send.
            arguments += ["--data-binary", "@\(requestFile.path)", "-H", "Content-Type: application/octet-stream", "-H", "Expect:"]
        }
        arguments.append("http://localhost\(path)")
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = arguments
        let output = Pipe()
        curl.standardOutput = output
        try curl.run()
        let status = Int(String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)) ?? 0
        curl.waitUntilExit()
        let headerText = (try? String(contentsOf: headerFile, encoding: .utf8)) ?? ""
        var parsed: [String: String] = [:]
        for line in headerText.split(separator: "\r\n") where line.contains(":") {
            let parts = line.split(separator: ":", maxSplits: 1)
            parsed[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        return Reply(status: status, body: (try? Data(contentsOf: bodyFile)) ?? Data(), headers: parsed)
    }

    public func json(_ path: String, _ object: [String: Any]) throws -> Reply {
        try request("POST", path, body: try JSONSerialization.data(withJSONObject: object))
    }

    /// The value of the first sample of the Prometheus metric `name` at `/metrics` (the server
    /// serves one model, so one sample per name); nil when the metric is not there.
    public func metric(_ name: String) throws -> Double? {
        let text = String(decoding: try request("GET", "/metrics").body, as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix("\(name){") || $0.hasPrefix("\(name) ") }
        return line?.split(separator: " ").last.flatMap { Double($0) }
    }

    /// The worker processes of the server (its children).
    public var workers: [Int32] { childrenOf(process.processIdentifier) }

    /// SIGTERM, then the exit status.
    @discardableResult
    public func stop() -> Int32 {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }
}

public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

