import Foundation
import Glibc

/// What a run of a built executable printed.
public struct Run {
    public let status: Int32
    public let stdout: String
    public let stderr: String

    public var jsonLines: [[String: Any]] {
        stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
}

/// Runs the built `visionpool` (or another built `executable`) to its exit; past `timeout` seconds it is killed (a test that
/// expects a refusal must not hang on a server that started after all).
public func visionpool(
    _ arguments: [String], executable: URL = TestPaths.executable, environment: [String: String] = [:], timeout: TimeInterval = 300
) throws -> Run {
    // Output goes to files, not pipes, so a chatty child can never block on a full pipe.
    let directory = try Fixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let outputURL = directory.appendingPathComponent("stdout"), errorURL = directory.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardOutput = try FileHandle(forWritingTo: outputURL)
    process.standardError = try FileHandle(forWritingTo: errorURL)
    try process.run()
    let watchdog = DispatchWorkItem { [process] in if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
    process.waitUntilExit()
    watchdog.cancel()
    return Run(
        status: process.terminationStatus, stdout: try String(contentsOf: outputURL, encoding: .utf8),
        stderr: try String(contentsOf: errorURL, encoding: .utf8))
}
