import Foundation
import Glibc
import Testing
import TestSupport

/// Two replicas behind a real load balancer (HAProxy, health-checking /v2/health/ready), each
/// replaced in turn the way a Kubernetes rolling update does it: SIGTERM, the old process
/// drains and exits, a new one starts on the same port. A client hammering the balancer
/// the whole time must see no failed request. The balancer does not retry, as kube-proxy
/// does not: what keeps requests whole is the replica's --shutdown-delay (without it, 16 of
/// 8731 requests failed here, sent in the moment between the listener closing and the
/// health check noticing).
@Suite(.serialized) struct RollingRestartTests {
    static let haproxy = "/usr/sbin/haproxy"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: haproxy), "needs HAProxy (tools/setup.sh installs Debian's haproxy)"))
    func replacingEachReplicaUnderLoadFailsNoRequest() async throws {
        let ports = try (0..<3).map { _ in try freeLoopbackPort() }
        let (balancerPort, replicaPorts) = (ports[0], Array(ports[1...]))
        guard Set(ports).count == 3 else { throw HarnessError("the free ports found were not distinct: \(ports)") }
        var replicas = try replicaPorts.map(Self.replica)
        defer { for replica in replicas { replica.stop() } }

        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let balancer = try Balancer(port: balancerPort, replicaPorts: replicaPorts, directory: directory)
        defer { balancer.stop() }
        #expect(await eventually(within: 20) { (try? httpStatus("http://127.0.0.1:\(balancerPort)/v2/health/ready")) == 200 }, "\(balancer.log)")

        let report = directory.appendingPathComponent("bench.json")
        let load = Process()
        load.executableURL = TestPaths.executable
        load.arguments = [
            "bench", "--url", "http://127.0.0.1:\(balancerPort)", "--model", "tiny", "--workload", "imagenet",
            "--concurrency", "4", "--duration", "15", "--warm-up", "0", "--request-timeout", "20", "--json", report.path,
        ]
        load.standardOutput = FileHandle.nullDevice
        load.standardError = FileHandle.nullDevice
        try load.run()
        #expect(await eventually(within: 30) { replicas.compactMap { try? $0.metric("visionpool_requests_total") }.reduce(0, +) >= 40 }, "the load reaches both replicas")

        var noticed: [Double] = []
        for (index, port) in replicaPorts.enumerated() {
            let name = "replica\(index)"
            let downs = balancer.count("\(name) is DOWN")
            let terminated = ContinuousClock.now
            kill(replicas[index].process.processIdentifier, SIGTERM)
            #expect(await eventually(within: 10) { balancer.count("\(name) is DOWN") > downs }, "HAProxy never took \(name) out: \(balancer.log)")
            let (seconds, attoseconds) = (ContinuousClock.now - terminated).components
            noticed.append(Double(seconds) + Double(attoseconds) * 1e-18)
            replicas[index].process.waitUntilExit()
            #expect(replicas[index].process.terminationStatus == 0, "\(replicas[index].logText)")
            let ups = balancer.count("\(name) is UP")
            replicas[index] = try Self.replica(port: port)
            #expect(await eventually(within: 20) { balancer.count("\(name) is UP") > ups }, "HAProxy never took the new \(name) in: \(balancer.log)")
        }
        #expect(load.isRunning, "both replicas were replaced while the load ran")
        load.waitUntilExit()
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any])
        let measurement = try #require(((json["runs"] as? [[String: Any]])?.first)?["measurement"] as? [String: Any])
        let requests = measurement["requests"] as? Int ?? 0, failed = measurement["failed"] as? Int ?? -1
        print("rolling restart of 2 replicas behind HAProxy: \(requests) requests, \(failed) failed; HAProxy took a replica out \(noticed.map { String(format: "%.2f", $0) }.joined(separator: " s and ")) s after its SIGTERM")
        #expect(failed == 0, "\(measurement["failures"] ?? "")")
        #expect(requests >= 100, "the load ran throughout")
    }

    /// One replica: loopback TCP, one worker, readiness failing for 2 s after SIGTERM
    /// while requests are still taken (HAProxy checks every 250 ms).
    private static func replica(port: Int) throws -> ServerHarness {
        try ServerHarness(
            ["--model", "tiny", "--tcp", "127.0.0.1:\(port)", "--shutdown-delay", "2", "--graceful-timeout", "15"],
            pool: ["--workers", "1", "--threads", "1"])
    }
}

/// HAProxy in the foreground, round-robin over the replicas, a replica in service only while
/// its readiness answers 200, no retries. Its state changes ("replica0 is DOWN") go to its log.
private final class Balancer: @unchecked Sendable {
    let process = Process()
    let logURL: URL

    init(port: Int, replicaPorts: [Int], directory: URL) throws {
        let servers = replicaPorts.enumerated().map { "    server replica\($0) 127.0.0.1:\($1) check" }.joined(separator: "\n")
        let configuration = """
            global
                log stderr format raw local0 info
            defaults
                mode http
                log global
                timeout connect 2s
                timeout client 30s
                timeout server 30s
                retries 0
            listen visionpool
                bind 127.0.0.1:\(port)
                balance roundrobin
                option httpchk GET /v2/health/ready
                http-check expect status 200
                default-server inter 250ms fall 1 rise 2
            \(servers)

            """
        let file = directory.appendingPathComponent("haproxy.cfg")
        try configuration.write(to: file, atomically: true, encoding: .utf8)
        logURL = directory.appendingPathComponent("haproxy.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: RollingRestartTests.haproxy)
        process.arguments = ["-db", "-f", file.path]
        let output = try FileHandle(forWritingTo: logURL)
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    func count(_ text: String) -> Int { log.components(separatedBy: text).count - 1 }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
    }
}
