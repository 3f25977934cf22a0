import Foundation
import Glibc
import Synchronization
import TestSupport
import Testing

/// Processes dying under load: what the service loses, and what it tells its clients.
@Suite(.serialized) struct FaultInjectionTests {
    /// Workers killed by SIGKILL and crashing with SIGSEGV while clients keep sending: each
    /// lost batch is retried on the other worker, so no good request fails.
    @Test(arguments: [SIGKILL, SIGSEGV])
    func workersDyingUnderLoadLoseNoGoodRequest(signal: Int32) async throws {
        let server = try ServerHarness(["--model", "resnet18"])
        defer { server.stop() }
        let image = try Fixtures.image("cat.jpg")
        let statuses = Mutex<[Int]>([])
        let stop = Atomic<Bool>(false)
        let clients = (0..<4).map { _ in
            Thread {
                while !stop.load(ordering: .relaxed) {
                    let status = (try? server.request("POST", "/v1/classify", body: image).status) ?? 0
                    statuses.withLock { $0.append(status) }
                }
            }
        }
        clients.forEach { $0.start() }
        let front = server.process.processIdentifier
        var killed: [Int32] = []
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(700))
            var victim: Int32?
            #expect(await eventually(within: 30) {
                victim = childrenOf(front).first { !killed.contains($0) && isRunning($0) }
                return victim != nil
            })
            guard let victim else { break }
            kill(victim, signal)
            killed.append(victim)
            // The replacement must be ready before the next kill: a batch that loses two workers
            // in a row is not retried again, by design.
            #expect(await eventually(within: 30) {
                let metrics = (try? server.request("GET", "/metrics").body).map { String(decoding: $0, as: UTF8.self) } ?? ""
                return metrics.contains(#"visionpool_workers_ready{model="resnet18"} 2.0"#) && childrenOf(front).allSatisfy { !killed.contains($0) }
            })
        }
        try await Task.sleep(for: .milliseconds(500))
        stop.store(true, ordering: .relaxed)
        while clients.contains(where: { !$0.isFinished }) { try await Task.sleep(for: .milliseconds(20)) }
        let answered = statuses.withLock { $0 }
        #expect(answered.count > 10 && answered.allSatisfy { $0 == 200 }, "statuses: \(Dictionary(grouping: answered) { $0 }.mapValues(\.count)); server log: \(server.logText.suffix(2000))")
        let metrics = String(decoding: try server.request("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains(#"visionpool_worker_restarts{model="resnet18"} 3.0"#), "\(metrics.split(separator: "\n").filter { $0.contains("restart") })")
    }

    /// An engine that fails on one batch: that request gets a 500 naming the failure, the
    /// others are answered, and the worker stays (an engine error is not a crash).
    @Test func anEngineErrorFailsOnlyItsRequestAndSaysSo() throws {
        let server = try ServerHarness(["--model", "tiny", "--workers", "1"], environment: ["VISIONPOOL_INJECT_ENGINE_ERROR_EVERY": "4"])
        defer { server.stop() }
        let image = try Fixtures.image("cat.jpg")
        let replies = try (0..<12).map { _ in try server.request("POST", "/v1/classify", body: image) }
        #expect(replies.map(\.status) == (1...12).map { $0 % 4 == 0 ? 500 : 200 })
        for reply in replies where reply.status == 500 {
            #expect((reply.json?["error"] as? String)?.contains("injected engine error") == true)
        }
        let metrics = String(decoding: try server.request("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains(#"visionpool_worker_restarts{model="tiny"} 0.0"#))
        #expect(try server.request("GET", "/v2/health/ready").status == 200)
    }

    /// The front killed outright: its workers follow within a second, and the next server on
    /// the same path replaces the socket file it left.
    @Test func killingTheFrontTakesItsWorkersAndTheNextStartCleansUp() async throws {
        let server = try ServerHarness(["--model", "tiny"])
        let workers = childrenOf(server.process.processIdentifier)
        #expect(workers.count == 2)
        kill(server.process.processIdentifier, SIGKILL)
        server.process.waitUntilExit()
        // They get SIGKILL from the kernel as the front dies (PR_SET_PDEATHSIG); the wait is for that event, its cap only for a broken build.
        #expect(await eventually(within: 10) { !workers.contains(where: isRunning) }, "workers \(workers) outlived the front")
        #expect(FileManager.default.fileExists(atPath: server.socket), "SIGKILL leaves the socket file")
        let next = try ServerHarness(["--model", "tiny"], socket: server.socket)
        defer { next.stop() }
        #expect(try next.request("POST", "/v1/classify", body: try Fixtures.image("cat.jpg")).status == 200)
    }
}
