import Foundation
import Glibc
import Testing
import TestSupport

/// What a server in a container or a Kubernetes pod needs: sizing from its CPU quota, the
/// model from a read-only folder, HTTP on all interfaces, logs a collector can parse.
@Suite(.serialized) struct ContainerTests {
    /// cgroup v1's cpu controller, where this machine's tests can make a group with a quota.
    static let cpuHierarchy = "/sys/fs/cgroup/cpu"
    static var canMakeCPUGroups: Bool { access(cpuHierarchy + "/cgroup.procs", W_OK) == 0 && access(cpuHierarchy, W_OK) == 0 }

    /// A pod limited to one CPU on a bigger node sees every CPU in its mask but gets one
    /// CPU's time: the pool must size itself for one, not for the mask.
    @Test(.enabled(if: canMakeCPUGroups, "needs a writable cgroup v1 cpu hierarchy at /sys/fs/cgroup/cpu"))
    func aOneCPUQuotaMakesOneWorkerThatSharesTheMask() throws {
        let mask = allowedCPUs(getpid())
        try #require(mask.count >= 2, "the quota must be tighter than the mask: this needs 2 CPUs or more")
        let group = Self.cpuHierarchy + "/visionpool-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: group, withIntermediateDirectories: false)
        defer { rmdir(group) }
        try "100000".write(toFile: group + "/cpu.cfs_period_us", atomically: false, encoding: .utf8)
        try "100000".write(toFile: group + "/cpu.cfs_quota_us", atomically: false, encoding: .utf8)
        let server = try ServerHarness(
            ["--model", "tiny"], pool: [], launcher: ["/bin/sh", "-c", "echo $$ > \(group)/cgroup.procs && exec \"$@\"", "sh"])
        defer { server.stop() }
        let workers = childrenOf(server.process.processIdentifier)
        #expect(workers.count == 1, "\(server.logText)")
        for worker in workers { #expect(allowedCPUs(worker) == mask, "under a quota the worker is not pinned to one CPU of the mask") }
        #expect(server.logText.contains("CPU quota 1 CPUs (\(group)/cpu.cfs_quota_us 100000 / cpu.cfs_period_us 100000): sizing for 1 CPUs"))
        #expect(server.logText.contains("1 openvino"), "the ready line names one worker")
        #expect(try server.request("POST", "/v1/classify", body: Fixtures.image("cat.jpg")).status == 200)
    }

    /// The mask alone still sizes and places the pool: one CPU, one worker pinned to it.
    @Test func aNarrowerMaskMakesFewerWorkersOnItsCPUs() throws {
        let cpu = try #require(allowedCPUs(getpid()).last)
        let server = try ServerHarness(["--model", "tiny"], pool: [], launcher: ["/usr/bin/taskset", "-c", String(cpu)])
        defer { server.stop() }
        let workers = childrenOf(server.process.processIdentifier)
        #expect(workers.count == 1)
        for worker in workers { #expect(allowedCPUs(worker) == [cpu]) }
        #expect(server.logText.contains("affinity mask \(cpu) (1 CPUs)"))
    }

    /// KServe's storage initializer leaves the model in a read-only folder; OpenVINO Model
    /// Server's layout puts it in a version folder. The server reads it, writes nothing
    /// there, serves it under the given name and classifies with the folder's labels.
    @Test func aModelFolderIsServedWithoutWritingToIt() throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let version = folder.appendingPathComponent("1")
        try FileManager.default.createDirectory(at: version, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: TestPaths.models.appendingPathComponent("tiny.onnx"), to: version.appendingPathComponent("model.onnx"))
        let labels = (0..<1000).map { "thing \($0)" }.joined(separator: "\n") + "\n"
        try labels.write(to: version.appendingPathComponent("labels.txt"), atomically: true, encoding: .utf8)
        for path in [version.path, folder.path] { chmod(path, 0o555) }
        defer { for path in [version.path, folder.path] { chmod(path, 0o755) } }
        let before = try Self.listing(folder)

        let server = try ServerHarness(["--model-dir", folder.path, "--model", "flowers"])
        defer { server.stop() }
        let metadata = try server.request("GET", "/v2/models/flowers")
        #expect(metadata.status == 200)
        #expect((metadata.json?["inputs"] as? [[String: Any]])?.first?["shape"] as? [Int] == [-1, 3, 224, 224])
        let reply = try server.request("POST", "/v1/classify", body: Fixtures.image("cat.jpg"))
        #expect(reply.status == 200)
        #expect(String(decoding: reply.body, as: UTF8.self).contains("thing "), "the labels come from the folder")
        server.stop()
        #expect(try Self.listing(folder) == before, "nothing was written into the model folder")
    }

    /// Refused with the reason: on standard error, or with `--log-format json` as a JSON line
    /// on standard output, where a collector reads the server's log.
    @Test func aModelFolderWithoutAModelIsRefusedClearly() throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let arguments = ["serve", "--model-dir", folder.path, "--socket", folder.appendingPathComponent("s.sock").path]
        let run = try visionpool(arguments, timeout: 60)
        #expect(run.status != 0)
        #expect(run.stderr.contains("holds no .onnx file"), "\(run.stderr)")
        let json = try visionpool(arguments + ["--log-format", "json"], timeout: 60)
        #expect(json.status != 0)
        #expect(json.jsonLines.contains { $0["level"] as? String == "critical" && ($0["message"] as? String)?.contains("holds no .onnx file") == true },
                "\(json.stdout)")
    }

    /// `--http-port` listens on every interface, as a container's server must; `--log-format
    /// json` writes one parseable object per line on standard output.
    @Test func httpPortAndJSONLogs() throws {
        let port = try freeLoopbackPort()
        let server = try ServerHarness(["--model", "tiny", "--http-port", String(port), "--log-format", "json", "--access-log"])
        defer { server.stop() }
        #expect(try httpStatus("http://127.0.0.1:\(port)/v2/health/ready") == 200)
        server.stop()
        // Standard error is in the same file here: the workers' own output would be there.
        let lines = server.logText.split(separator: "\n").filter { $0.hasPrefix("{") || $0.contains(" visionpool:") }
        let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count >= 5 && objects.count == lines.count, "every log line is a JSON object: \(server.logText)")
        #expect(objects.contains { ($0["level"] as? String) == "warning" && ($0["message"] as? String)?.contains("synthetic weights") == true })
        #expect(objects.contains { ($0["message"] as? String)?.contains("http://0.0.0.0:\(port)") == true })
        #expect(objects.allSatisfy { $0["time"] is String && $0["level"] is String && $0["source"] is String })
    }

    /// After SIGTERM readiness fails at once while new requests are still served for the
    /// shutdown delay, so a load balancer has time to notice; then the server stops.
    @Test func theShutdownDelayKeepsServingWhileReadinessFails() async throws {
        let server = try ServerHarness(["--model", "tiny", "--shutdown-delay", "3"])
        defer { server.stop() }
        kill(server.process.processIdentifier, SIGTERM)
        #expect(await eventually(within: 2) { (try? server.request("GET", "/v2/health/ready").status) == 503 }, "readiness fails at once")
        #expect(try server.request("POST", "/v1/classify", body: Fixtures.image("cat.jpg")).status == 200)
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus == 0)
        #expect(server.logText.contains("taking new requests for 3.0 seconds more while readiness fails"))
    }

    private static func listing(_ folder: URL) throws -> [String] {
        let enumerator = try #require(FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.contentModificationDateKey]))
        return enumerator.compactMap { item -> String? in
            guard let url = item as? URL else { return nil }
            let date = (try? url.resourceValues(forKeys: [.contentModificationDateKey]))?.contentModificationDate
            return "\(url.path) \(date?.timeIntervalSince1970 ?? 0)"
        }.sorted()
    }
}
