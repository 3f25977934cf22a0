import Foundation
import Glibc
import TestSupport
import Synchronization
import Testing

/// The `tiny` model's tensors: 3×224×224 floats per sample.
let sampleCount = 3 * 224 * 224

@Suite(.serialized) struct ServerTests {
    @Test func readyOnlyOnceThePoolIsUp() throws {
        // A cold compile of four batch sizes keeps the pool busy well after the socket is bound.
        let cache = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: cache) }
        let server = try ServerHarness(["--model", "resnet50", "--max-batch", "4", "--cache-dir", cache.path], waitForReady: false)
        defer { server.stop() }
        let deadline = Date().addingTimeInterval(30)
        while (try? server.request("GET", "/v2/health/live").status) != 200 && Date() < deadline { usleep(20_000) }
        let early = try server.request("GET", "/v2/health/ready")
        #expect(early.status == 503 && (early.json?["error"] as? String)?.contains("not ready") == true)
        #expect(try server.request("GET", "/v2/models/resnet50/ready").status == 503)
        #expect(try server.request("GET", "/v2/health/live").status == 200, "warming up is alive")
        let tooEarly = try server.request("POST", "/v1/classify", body: try Fixtures.image("cat.jpg"))
        #expect(tooEarly.status == 503 && tooEarly.headers["retry-after"] == "1", "inference waits for no warm-up")
        while (try? server.request("GET", "/v2/health/ready").status) != 200 && Date() < deadline.addingTimeInterval(60) { usleep(50_000) }
        #expect(try server.request("GET", "/v2/health/ready").status == 200)
        #expect(try server.request("GET", "/v2/models/resnet50/ready").status == 200)
        #expect(try server.request("GET", "/v2/models/resnet50/versions/1/ready").status == 200)
    }

    @Test func imagesAsBytesWithTheClassificationExtension() throws {
        let server = try ServerHarness()
        defer { server.stop() }
        let images = try [Fixtures.sample("chelsea.png"), Fixtures.sample("coffee.png")]
        let payload = lengthPrefixed(images)
        let (body, headers) = try binaryBody([
            "id": "photos",
            "inputs": [["name": "input", "shape": [2], "datatype": "BYTES", "parameters": ["binary_data_size": payload.count]]],
            "outputs": [["name": "logits", "parameters": ["classification": 5]]],
        ], payload)
        let reply = try server.request("POST", "/v2/models/efficientnet-lite0/infer", body: body, headers: headers)
        #expect(reply.status == 200, "\(String(decoding: reply.body, as: UTF8.self))")
        let json = try #require(reply.json)
        #expect(json["id"] as? String == "photos")
        let output = try #require((json["outputs"] as? [[String: Any]])?.first)
        #expect(output["datatype"] as? String == "BYTES" && (output["shape"] as? [Int]) == [2, 5])
        let strings = try #require(output["data"] as? [String])
        let classes = strings.map { Int($0.split(separator: ":")[1])! }
        #expect(catClasses.contains(classes[0]), "\(strings)")
        #expect(!coffeeClasses.isDisjoint(with: classes[5...]), "\(strings)")
    }

    /// A binary-extension header announcing 100 bytes that never come.
    static let claimsMissingBytes = Data(#"{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":100}}]}"#.utf8)

    /// A binary FP32 tensor with a NaN in it: the client's fault, not the server's.
    static let nanTensor: (path: String, body: Data, headers: [String: String], status: Int, message: String) = {
        var values = [Float](repeating: 0.5, count: 3 * 224 * 224)
        values[7] = .nan
        let (body, headers) = try! binaryBody(
            ["inputs": [["name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "parameters": ["binary_data_size": values.count * 4]]]],
            values.withUnsafeBytes { Data($0) })
        return ("/v2/models/tiny/infer", body, headers, 400, "element 7 is nan")
    }()

    /// Each bad request and the status it must get; the error names what was wrong.
    static let badRequests: [(path: String, body: Data, headers: [String: String], status: Int, message: String)] = [
        ("/v2/models/tiny/infer", Data("{not json".utf8), [:], 400, "JSON"),
        ("/v2/models/tiny/infer", Data(#"{"inputs":[{"name":"input","shape":[1,3,224,224],"datatype":"INT8","data":[1]}]}"#.utf8), [:], 400, "datatype"),
        ("/v2/models/tiny/infer", Data(#"{"inputs":[{"name":"input","shape":[1,3,10,10],"datatype":"FP32","data":[1]}]}"#.utf8), [:], 400, "shape"),
        ("/v2/models/tiny/infer", Data(#"{"inputs":[{"name":"other","shape":[1],"datatype":"BYTES","data":[]}]}"#.utf8), [:], 400, "input"),
        ("/v2/models/tiny/infer", claimsMissingBytes, ["Inference-Header-Content-Length": String(claimsMissingBytes.count)], 400, "binary_data_size"),
        ("/v2/models/tiny/infer", Data(#"{"inputs":[{"name":"input","shape":[-4,3,224,224],"datatype":"FP32","data":[]}]}"#.utf8), [:], 400, "shape"),
        ("/v2/models/tiny/infer", Data(#"{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["not base64!"]}]}"#.utf8), [:], 400, "base64"),
        ("/v2/models/tiny/infer", Data(#"{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":[""]}],"outputs":[{"name":"logits"},{"name":"logits"}]}"#.utf8), [:], 400, "once"),
        ("/v1/classify", Data(), [:], 400, "empty"),
        ("/v1/classify?top=0", Data("x".utf8), [:], 400, "top"),
        ("/v1/classify?top=abc", Data("x".utf8), [:], 400, "not \"abc\""),
        nanTensor,
        ("/v2/models/nope/infer", Data("{}".utf8), [:], 404, "nope"),
    ]

    @Test func aPassedDeadlineGets504AndTheServerStaysUp() throws {
        let server = try ServerHarness(["--model", "resnet50", "--request-timeout", "1"])
        defer { server.stop() }
        // Stopped workers finish nothing, however fast the CPU: the answer may not wait for them.
        let workers = childrenOf(server.process.processIdentifier)
        #expect(workers.count == 2)
        workers.forEach { kill($0, SIGSTOP) }
        let start = Date()
        let late = try server.request("POST", "/v1/classify", body: try Fixtures.image("cat.jpg"), headers: ["Timeout-Ms": "300"])
        // A client may ask for less time than --request-timeout, never for more.
        let greedyStart = Date()
        let greedy = try server.request("POST", "/v1/classify", body: try Fixtures.image("cat.jpg"), headers: ["Timeout-Ms": "999999999999"])
        let greedySeconds = Date().timeIntervalSince(greedyStart)
        workers.forEach { kill($0, SIGCONT) }
        #expect(late.status == 504, "\(String(decoding: late.body, as: UTF8.self))")
        #expect(Date().timeIntervalSince(start) < 1.5 + greedySeconds, "the 504 came only after the work finished")
        #expect((late.json?["error"] as? String)?.contains("deadline") == true)
        #expect(greedy.status == 504 && greedySeconds < 3, "Timeout-Ms is capped at --request-timeout: \(greedySeconds) s")
        #expect(try server.request("POST", "/v1/classify", body: try Fixtures.image("cat.jpg")).status == 200)
    }

    /// Stopped workers finish nothing, so the four slots of one worker (two batches in its
    /// hands, two queued) stay taken: with no waiting line (`--max-queue 0`) the fifth request
    /// is refused with 503 and Retry-After, and once the workers go on the four are answered.
    /// One image per batch (`--max-batch 1`), so each request holds a slot of its own.
    @Test func aFullQueueGets503WithRetryAfterAndNothingElseFails() async throws {
        let server = try ServerHarness(["--model", "resnet50", "--workers", "1", "--max-queue", "0", "--max-batch", "1"])
        defer { server.stop() }
        let image = try Fixtures.image("cat.jpg")
        let workers = server.workers
        workers.forEach { kill($0, SIGSTOP) }
        let replies = Mutex([Int]())
        let group = DispatchGroup()
        for _ in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                let status = (try? server.request("POST", "/v1/classify", body: image).status) ?? 0
                replies.withLock { $0.append(status) }
                group.leave()
            }
        }
        // Every slot is taken once two batches wait behind the two the worker holds.
        #expect(await eventually(within: 30) { (try? server.metric("visionpool_queued_batches")) == 2 })
        let refused = try server.request("POST", "/v1/classify", body: image)
        #expect(refused.status == 503 && refused.headers["retry-after"] == "1", "\(refused.status) \(String(decoding: refused.body, as: UTF8.self))")
        #expect((refused.json?["error"] as? String)?.contains("overloaded") == true)
        workers.forEach { kill($0, SIGCONT) }
        group.wait()
        #expect(replies.withLock { $0 } == [200, 200, 200, 200])
    }

    @Test func oversizedBodiesGet413() throws {
        let server = try ServerHarness(["--max-body-bytes", "10000"])
        defer { server.stop() }
        let reply = try server.request("POST", "/v1/classify", body: try Fixtures.image("cat.jpg"))
        #expect(reply.status == 413 && (reply.json?["error"] as? String)?.contains("10000") == true)
    }

    @Test func socketIsPrivateAndRemovedOnGracefulStop() async throws {
        let server = try ServerHarness()
        var status = stat()
        #expect(stat(server.socket, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)
        // A request in flight when SIGTERM arrives still gets its answer. Stopped workers keep
        // it in flight for as long as the test needs.
        let workers = server.workers
        workers.forEach { kill($0, SIGSTOP) }
        let image = try Fixtures.image("cat.jpg")
        nonisolated(unsafe) var inFlight: ServerHarness.Reply?
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            inFlight = try? server.request("POST", "/v1/classify", body: image)
            done.signal()
        }
        #expect(await eventually(within: 30) { (try? server.metric("visionpool_in_flight_requests")) == 1 })
        kill(server.process.processIdentifier, SIGTERM)
        #expect(await eventually(within: 10) { server.logText.contains("stopping gracefully") }, "\(server.logText)")
        workers.forEach { kill($0, SIGCONT) }
        done.wait()
        server.process.waitUntilExit()  // the one SIGTERM above: a second would stop it at once
        let exit = server.process.terminationStatus
        #expect(inFlight?.status == 200)
        #expect(exit == 0, "\(server.logText)")
        #expect(!FileManager.default.fileExists(atPath: server.socket))
    }

    @Test func aStaleSocketIsReplacedAndALiveOneIsNot() async throws {
        // A live socket with no server's lock beside it (another program listens there):
        // only the connection probe can refuse it.
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let live = directory.appendingPathComponent("live.sock").path
        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        listener.standardOutput = FileHandle.nullDevice
        listener.standardError = FileHandle.nullDevice
        listener.arguments = ["-c", "import socket, sys, time; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); time.sleep(120)", live]
        try listener.run()
        defer {
            kill(listener.processIdentifier, SIGKILL)
            listener.waitUntilExit()
        }
        #expect(await eventually(within: 10) { FileManager.default.fileExists(atPath: live) })
        let second = Process()
        second.executableURL = TestPaths.executable
        second.arguments = ["serve", "--socket", live, "--workers", "1"]
        let errors = Pipe()
        second.standardError = errors
        try second.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        second.waitUntilExit()
        #expect(second.terminationStatus != 0, "a server must not take a live socket")
        #expect(message.contains("already listening on \(live)"), "\(message)")
        #expect(FileManager.default.fileExists(atPath: live) && listener.isRunning, "the other program's socket is left alone")

        let first = try ServerHarness()
        defer { first.stop() }

        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        #expect(FileManager.default.fileExists(atPath: first.socket), "SIGKILL leaves the socket file behind")
        let replacement = try ServerHarness(socket: first.socket)
        defer { replacement.stop() }
        #expect(try replacement.request("GET", "/v2/health/ready").status == 200)
    }

    @Test func idleConnectionsAreClosed() throws {
        let server = try ServerHarness(["--model", "tiny", "--idle-timeout", "1"])
        defer { server.stop() }
        let connection = try RawConnection(socket: server.socket)
        // Say nothing: the server hangs up after its idle timeout (recv sees end of file).
        let start = Date()
        #expect(connection.readUntilClosed(timeout: 10).closed, "the connection was not closed")
        #expect(Date().timeIntervalSince(start) < 5)
    }

    @Test("TCP and gRPC are loopback unless allowed", arguments: ["--tcp", "--grpc"], ["0.0.0.0:8999", "127.evil.example:8999", "[::]:8999"])
    func tcpIsLoopbackUnlessAllowed(option: String, address: String) throws {
        let refused = Process()
        refused.executableURL = TestPaths.executable
        refused.arguments = ["serve", option, address]
        let errors = Pipe()
        refused.standardError = errors
        try refused.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        refused.waitUntilExit()
        #expect(refused.terminationStatus != 0 && text.contains("--allow-non-loopback") && text.contains(option), "\(text)")
    }

    /// A gRPC address something else holds stops the start, and says which and why.
    @Test func aGRPCPortInUseIsNamed() throws {
        let holder = try LoopbackPort(listening: true)
        let port = holder.port
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try visionpool(
            ["serve", "--model", "tiny", "--workers", "1", "--socket", directory.appendingPathComponent("s.sock").path, "--grpc", "127.0.0.1:\(port)"],
            timeout: 60)
        #expect(run.status != 0)
        #expect(run.stderr.contains("cannot serve gRPC on 127.0.0.1:\(port)") && run.stderr.contains("in use"), "\(run.stderr)")
        withExtendedLifetime(holder) {}
    }
}

@Suite struct ConformanceTests {
    @Test func tritonsOwnClientUnderstandsTheServer() throws {
        try Self.expect("tools/triton_conformance.py", passes: 6)
    }

    /// tritonclient.grpc over loopback TCP and a Unix socket: health, metadata, FP32 scores
    /// equal to HTTP's, BYTES images with classification, deadlines, NOT_FOUND,
    /// INVALID_ARGUMENT, a Triton-only call, and the server still up.
    @Test func tritonsGRPCClientUnderstandsTheServerOverTCPAndAUnixSocket() throws {
        try Self.expect("tools/triton_grpc_conformance.py", passes: 20)
    }

    /// A repository of three models through tritonclient's HTTP and gRPC clients: the index,
    /// every model's answer and version, the model configuration, statistics that count the
    /// requests sent, unload and load.
    @Test func tritonsClientsDriveTheModelRepository() throws {
        try Self.expect("tools/repository_conformance.py", passes: 5)
    }

    /// KServe's own SDK, REST and gRPC: health (its REST client parses the bodies), FP32
    /// tensors and BYTES images.
    @Test func kservesOwnSDKUnderstandsTheServer() throws {
        try Self.expect("tools/kserve_conformance.py", passes: 6)
    }

    /// Runs one of the conformance scripts against the built binary: every check must pass.
    static func expect(_ script: String, passes: Int) throws {
        let process = Process()
        process.executableURL = TestPaths.root.appendingPathComponent(".venv/bin/python")
        process.arguments = [TestPaths.root.appendingPathComponent(script).path, "--binary", TestPaths.executable.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("\(passes) passed, 0 failed"), "\(text)")
    }
}
