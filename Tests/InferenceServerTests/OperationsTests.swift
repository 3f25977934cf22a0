import Foundation
import Glibc
import Synchronization
import TestSupport
import Testing

/// What operators and init systems do to a running server: signals to its process group,
/// stuck workers, crash loops. Real servers, real workers, real signals.
@Suite(.serialized) struct OperationsTests {
    /// Clients that send requests in a loop until stopped, recording every reply's status
    /// (0: no connection).
    final class Load: Sendable {
        private let replies = Mutex([Int]())
        private let stopping = Atomic(false)
        private let running = Atomic(0)

        init(_ server: ServerHarness, clients: Int) throws {
            let image = try Fixtures.image("cat.jpg")
            running.store(clients, ordering: .relaxed)
            for _ in 0..<clients {
                Thread { [self] in
                    while !stopping.load(ordering: .relaxed) {
                        let status = (try? server.request("POST", "/v1/classify", body: image).status) ?? 0
                        replies.withLock { $0.append(status) }
                    }
                    running.subtract(1, ordering: .relaxed)
                }.start()
            }
        }

        var statuses: [Int] { replies.withLock { $0 } }

        /// Stops the clients and waits for their last replies.
        func finish() {
            stopping.store(true, ordering: .relaxed)
            while running.load(ordering: .relaxed) > 0 { usleep(10_000) }
        }
    }

    /// `--front-cpus 1`: the front's threads run only on the last CPU of the mask, the worker
    /// only on the others, and requests are still answered.
    @Test(.enabled(if: allowedCPUs(getpid()).count >= 2, "needs two CPUs"))
    func theFrontKeepsTheCPUsItIsGiven() async throws {
        let available = allowedCPUs(getpid())
        let server = try ServerHarness(["--workers", "1", "--front-cpus", "1"])
        defer { server.stop() }
        let front = server.process.processIdentifier
        let threads = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(front)/task").compactMap { Int32($0) }
        #expect(!threads.isEmpty)
        for thread in threads {
            #expect(allowedCPUs(thread) == [available.last!], "front thread \(thread)")
        }
        let workers = childrenOf(front)
        #expect(workers.count == 1)
        for worker in workers {
            #expect(allowedCPUs(worker) == [available.first!], "worker \(worker)")
        }
        #expect(try server.request("POST", "/v1/classify", body: Fixtures.image("cat.jpg")).status == 200)
        #expect(server.logText.contains("the front on [\(available.last!)]"))
    }

    @Test func ctrlCToTheProcessGroupUnderLoadLosesNothingAndLeavesNothing() async throws {
        let server = try ServerHarness(["--graceful-timeout", "10"])
        defer { server.stop() }
        let front = server.process.processIdentifier
        let workers = childrenOf(front)
        #expect(workers.count == 2)
        #expect(workers.allSatisfy { getpgid($0) == $0 }, "each worker leads a process group of its own")
        let load = try Load(server, clients: 3)
        #expect(await eventually(within: 30) { load.statuses.filter { $0 == 200 }.count >= 6 })
        // A terminal's Ctrl-C reaches the foreground process group: the front's, never the workers'.
        let group = getpgid(front)
        if group == front {
            kill(-group, SIGINT)
        } else {
            kill(front, SIGINT)  // The front shares the test runner's group: signal it alone.
        }
        let signalled = Date()
        server.process.waitUntilExit()
        let stopSeconds = Date().timeIntervalSince(signalled)
        load.finish()
        #expect(server.process.terminationStatus == 0, "a clean stop exits 0: \(server.logText)")
        let statuses = load.statuses
        #expect(!statuses.contains { $0 >= 500 }, "no request failed while stopping: \(statuses)")
        #expect(statuses.filter { $0 == 200 }.count >= 6)
        #expect(!workers.contains(where: isRunning), "workers outlived the front")
        #expect(!FileManager.default.fileExists(atPath: server.socket), "the socket is removed")
        #expect(!server.logText.contains("exited unexpectedly"), "the workers were stopped, not crashed")
        print("SIGINT to \(group == front ? "the front's process group" : "the front") under load: stopped in \(String(format: "%.2f", stopSeconds)) s, \(statuses.filter { $0 == 200 }.count) × 200, \(statuses.filter { $0 == 0 }.count) refused connections after the listener closed")
    }

    @Test func aStoppedWorkerIsReplacedByTheWatchdogAndSIGTERMStillFinishesInTime() async throws {
        let server = try ServerHarness(["--model", "resnet50", "--worker-timeout", "1", "--graceful-timeout", "4"])
        defer { server.stop() }
        let front = server.process.processIdentifier
        let workers = childrenOf(front)
        let stuck = try #require(workers.first)
        kill(stuck, SIGSTOP)
        let image = try Fixtures.image("cat.jpg")
        let replies = Mutex([Int]())
        let started = Date()
        DispatchQueue.concurrentPerform(iterations: 6) { _ in
            let status = (try? server.request("POST", "/v1/classify", body: image).status) ?? 0
            replies.withLock { $0.append(status) }
        }
        let burstSeconds = Date().timeIntervalSince(started)
        let statuses = replies.withLock { $0 }
        #expect(statuses.allSatisfy { $0 == 200 || $0 == 504 }, "requests on a stuck worker succeed elsewhere or time out: \(statuses)")
        #expect(statuses.filter { $0 == 200 }.count >= 5, "\(statuses)")
        #expect(await eventually(within: 10) { !isRunning(stuck) }, "the watchdog killed the stopped worker")
        #expect(server.logText.contains("worker timeout"))
        #expect(await eventually(within: 60) { (try? server.request("GET", "/v2/health/ready").status) == 200 })
        // Now stop an idle worker: it will never read the front's STOP.
        let replacement = try #require(childrenOf(front).first { $0 != stuck })
        kill(replacement, SIGSTOP)
        let signalled = Date()
        kill(front, SIGTERM)
        server.process.waitUntilExit()
        let stopSeconds = Date().timeIntervalSince(signalled)
        #expect(stopSeconds < 6, "SIGTERM finished within the 4 s graceful timeout: took \(stopSeconds) s")
        #expect(!childrenOf(front).contains(where: isRunning) && !isRunning(replacement), "nothing is left behind")
        print("stuck worker: burst of 6 in \(String(format: "%.2f", burstSeconds)) s \(statuses); SIGTERM with a stopped worker took \(String(format: "%.2f", stopSeconds)) s")
    }

    @Test func aCrashLoopDegradesLivenessFailsOnlyWhenNothingRecoversAndReadinessReturns() async throws {
        let failpoint = try Fixtures.temporaryDirectory().appendingPathComponent("fail-worker-start")
        let server = try ServerHarness(
            ["--liveness-timeout", "6"], environment: ["VISIONPOOL_FAIL_WORKER_START_IF_EXISTS": failpoint.path])
        defer {
            server.stop()
            try? FileManager.default.removeItem(at: failpoint)
        }
        let image = try Fixtures.image("cat.jpg")
        // From now on every new worker exits as it starts: kill the running ones.
        _ = FileManager.default.createFile(atPath: failpoint.path, contents: nil)
        childrenOf(server.process.processIdentifier).forEach { kill($0, SIGKILL) }
        let killed = Date()
        #expect(await eventually(within: 10) { (try? server.request("GET", "/v2/health/ready").status) == 503 })
        // Alive for as long as the liveness timeout runs (a loaded machine may already be past it).
        let early = try server.request("GET", "/v2/health/live").status
        let earlyAt = Date().timeIntervalSince(killed)
        #expect(early == 200 || earlyAt >= 6, "a pool that is replacing workers is alive (\(early) after \(earlyAt) s)")
        #expect(await eventually(within: 10) {
            let reply = try? server.request("POST", "/v1/classify", body: image)
            return reply?.status == 503 && reply?.headers["retry-after"] == "1"
        }, "in a crash loop requests are refused at once, not left to time out")
        #expect(await eventually(within: 20) { (try? server.request("GET", "/v2/health/live").status) == 503 })
        let notLiveAfter = Date().timeIntervalSince(killed)
        #expect(notLiveAfter >= 5.9, "liveness held for the --liveness-timeout")
        let live = try server.request("GET", "/v2/health/live")
        #expect((live.json?["error"] as? String)?.contains("no worker has been ready") == true, "\(String(decoding: live.body, as: UTF8.self))")
        // Workers can start again: the pool, which never gave up, recovers by itself.
        try FileManager.default.removeItem(at: failpoint)
        let fixed = Date()
        #expect(await eventually(within: 60) { (try? server.request("GET", "/v2/health/ready").status) == 200 })
        let readyAgainAfter = Date().timeIntervalSince(fixed)
        #expect(try server.request("GET", "/v2/health/live").status == 200)
        #expect(try server.request("POST", "/v1/classify", body: image).status == 200)
        #expect(server.stop() == 0)
        print("crash loop: liveness 503 after \(String(format: "%.1f", notLiveAfter)) s, ready again \(String(format: "%.1f", readyAgainAfter)) s after workers could start")
    }

    /// One image per batch (`--max-batch 1`): each request holds a slot of its own, so four
    /// fill them. By the router's `/v1/classify` and by KServe `infer`, which the connection's
    /// pipeline answers.
    @Test(arguments: ["/v1/classify", "/v2/models/resnet50/infer"])
    func clientsThatHangUpLeaveTheLineAndTheirPlaceGoesToTheNext(path: String) async throws {
        let server = try ServerHarness(["--model", "resnet50", "--workers", "1", "--max-queue", "6", "--max-batch", "1"])
        defer { server.stop() }
        let worker = try #require(childrenOf(server.process.processIdentifier).first)
        let image = try Fixtures.image("cat.jpg")
        let (body, headers) = path.hasSuffix("/infer")
            ? try binaryBody(
                ["inputs": [["name": "encoded_image", "shape": [1], "datatype": "BYTES", "parameters": ["binary_data_size": image.count + 4]]]],
                lengthPrefixed([image]))
            : (image, [:])
        kill(worker, SIGSTOP)
        // Four take the slots of the stopped worker, six wait in line; all ten hang up.
        DispatchQueue.concurrentPerform(iterations: 10) { _ in
            _ = try? server.request("POST", path, body: body, headers: headers, hangUpAfter: 0.5)
        }
        kill(worker, SIGCONT)
        // Had the six stayed in line (until their 30 s deadline), this one would find it full: 503.
        let next = try server.request("POST", path, body: body, headers: headers)
        #expect(next.status == 200, "\(String(decoding: next.body, as: UTF8.self))")
        let metrics = String(decoding: try server.request("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains("outcome=\"499\""), "hung-up requests are counted as such")
    }
}
