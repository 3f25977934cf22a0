import Foundation
import Glibc
import Synchronization
import TestSupport
import Testing

/// What a hostile or broken client can throw at the server. Each gets a precise 4xx (or its
/// connection closed), the server stays up, and good requests sent meanwhile all succeed.
@Suite(.serialized) struct HostileRequestTests {
    /// One BYTES input in the binary extension holding `image`.
    static func imageRequest(_ image: Data, model: String = "tiny") throws -> (path: String, body: Data, headers: [String: String]) {
        let payload = lengthPrefixed([image])
        let (body, headers) = try binaryBody(
            ["inputs": [["name": "input", "shape": [1], "datatype": "BYTES", "parameters": ["binary_data_size": payload.count]]]], payload)
        return ("/v2/models/\(model)/infer", body, headers)
    }

    static func header(_ json: String, length: Int? = nil) -> [String: String] {
        ["Inference-Header-Content-Length": String(length ?? json.utf8.count)]
    }

    /// An FP32 request for one tiny-model sample whose `data` list holds `numbers`.
    static func fp32JSON(_ numbers: String) -> Data {
        Data(#"{"inputs":[{"name":"input","shape":[1,3,224,224],"datatype":"FP32","data":[\#(numbers)]}]}"#.utf8)
    }

    /// Requests that are wrong in every way a client can be wrong, and the status each must get.
    static func cases() throws -> [(name: String, path: String, body: Data, headers: [String: String], status: Int)] {
        let bytesHeader = #"{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":8}}]}"#
        let fp32Header = { (size: String) in #"{"inputs":[{"name":"input","shape":[1,3,224,224],"datatype":"FP32","parameters":{"binary_data_size":\#(size)}}]}"# }
        var cases: [(String, String, Data, [String: String], Int)] = [
            ("header length past the body", "/v2/models/tiny/infer", Data(bytesHeader.utf8), header(bytesHeader, length: 5000), 400),
            ("negative header length", "/v2/models/tiny/infer", Data(bytesHeader.utf8), header(bytesHeader, length: -3), 400),
            ("absurd header length", "/v2/models/tiny/infer", Data(bytesHeader.utf8), ["Inference-Header-Content-Length": "99999999999999999999"], 400),
            ("negative binary_data_size", "/v2/models/tiny/infer", Data(fp32Header("-602112").utf8), header(fp32Header("-602112")), 400),
            ("absurd binary_data_size", "/v2/models/tiny/infer", Data(fp32Header("9223372036854775807").utf8), header(fp32Header("9223372036854775807")), 400),
            ("binary size not the tensor's", "/v2/models/tiny/infer", Data(fp32Header("12").utf8) + Data(count: 12), header(fp32Header("12")), 400),
            ("a billion samples", "/v2/models/tiny/infer", Data(#"{"inputs":[{"name":"input","shape":[1000000000,3,224,224],"datatype":"FP32","data":[]}]}"#.utf8), [:], 400),
            ("nested JSON bomb", "/v2/models/tiny/infer", Data((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8), [:], 400),
            ("FP32 data with one number too many", "/v2/models/tiny/infer", fp32JSON(String(repeating: "0,", count: 150_528) + "0"), [:], 400),
            ("FP32 data one number short", "/v2/models/tiny/infer", fp32JSON(String(repeating: "0,", count: 150_526) + "0"), [:], 400),
            ("FP32 data holding a string", "/v2/models/tiny/infer", fp32JSON(#"1,"2""#), [:], 400),
            ("FP32 data holding NaN", "/v2/models/tiny/infer", fp32JSON("NaN"), [:], 400),
            ("FP32 number out of float range", "/v2/models/tiny/infer", fp32JSON("1e39," + String(repeating: "0,", count: 150_526) + "0"), [:], 400),
            ("FP32 number with a leading plus", "/v2/models/tiny/infer", fp32JSON("+1"), [:], 400),
            ("FP32 number in hex", "/v2/models/tiny/infer", fp32JSON("0x1p3"), [:], 400),
            ("FP32 number with a leading zero", "/v2/models/tiny/infer", fp32JSON("01"), [:], 400),
            ("FP32 data that never closes", "/v2/models/tiny/infer", Data(#"{"inputs":[{"name":"input","shape":[1,3,224,224],"datatype":"FP32","data":[1,2,3"#.utf8), [:], 400),
            ("FP32 data nested 100 deep", "/v2/models/tiny/infer", fp32JSON(String(repeating: "[", count: 100) + "1" + String(repeating: "]", count: 100)), [:], 400),
            ("data named twice", "/v2/models/tiny/infer", Data(#"{"inputs":[{"name":"input","shape":[1,3,224,224],"datatype":"FP32","data":[1],"data":[2]}]}"#.utf8), [:], 400),
            ("inputs named twice", "/v2/models/tiny/infer", Data(#"{"inputs":[],"inputs":[{"name":"input","shape":[1,3,224,224],"datatype":"FP32","data":[1]}]}"#.utf8), [:], 400),
            ("path traversal in the model name", "/v2/models/..%2F..%2Fetc%2Fpasswd/infer", Data("{}".utf8), [:], 404),
            ("dot segments in the model name", "/v2/models/../../etc/passwd/infer", Data("{}".utf8), [:], 404),
            ("NUL in the model name", "/v2/models/tiny%00/infer", Data("{}".utf8), [:], 404),
            ("a version that is a path", "/v2/models/tiny/versions/..%2F..%2F1/infer", Data("{}".utf8), [:], 404),
        ]
        for (name, fixture, status) in [
            ("zero-byte image", nil, 400), ("random bytes", "garbage.bin", 400), ("claims 100000×100000 pixels", "bomb.png", 413),
            ("claims 60000×60000 pixels", "bomb.jpg", 413), ("truncated JPEG", "truncated.jpg", 400), ("animated GIF", "animated.gif", 400),
            ("animated WebP", "animated.webp", 400), ("multi-page TIFF", "multipage.tiff", 400),
        ] as [(String, String?, Int)] {
            let request = try imageRequest(try fixture.map(Fixtures.image) ?? Data())
            cases.append(("image: \(name)", request.path, request.body, request.headers, status))
        }
        return cases
    }

    @Test func hostileRequestsGetPrecise4xxWhileGoodOnesSucceed() throws {
        let server = try ServerHarness(["--model", "tiny"])
        defer { server.stop() }
        let good = try Self.imageRequest(try Fixtures.image("cat.jpg"))
        let goodStatuses = Mutex<[Int]>([])
        let stop = Atomic<Bool>(false)
        let background = Thread {
            while !stop.load(ordering: .relaxed) {
                let status = (try? server.request("POST", good.path, body: good.body, headers: good.headers).status) ?? 0
                goodStatuses.withLock { $0.append(status) }
            }
        }
        background.start()
        for bad in try Self.cases() {
            let reply = try server.request("POST", bad.path, body: bad.body, headers: bad.headers)
            #expect(reply.status == bad.status, "\(bad.name): \(String(decoding: reply.body.prefix(300), as: UTF8.self))")
            #expect((reply.json?["error"] as? String).map { !$0.isEmpty } == true,
                    "\(bad.name): the error says what was wrong, not \(String(decoding: reply.body.prefix(300), as: UTF8.self))")
        }
        stop.store(true, ordering: .relaxed)
        while !background.isFinished { usleep(10_000) }
        let statuses = goodStatuses.withLock { $0 }
        #expect(!statuses.isEmpty && statuses.allSatisfy { $0 == 200 }, "good requests alongside: \(statuses)")
        #expect(try server.request("GET", "/v2/health/ready").status == 200)
    }

    @Test func oversizedHeadersCloseTheConnectionAndNothingElse() throws {
        let server = try ServerHarness(["--model", "tiny"])
        defer { server.stop() }
        let connection = try RawConnection(socket: server.socket)
        let huge = "POST /v1/classify HTTP/1.1\r\nHost: x\r\nX-Padding: \(String(repeating: "a", count: 200_000))\r\nContent-Length: 0\r\n\r\n"
        connection.send(huge.utf8)
        let answer = connection.readUntilClosed(timeout: 10)
        #expect(answer.closed, "the server must not keep reading an endless header")
        #expect(statusCode(answer.bytes).map { (400...499).contains($0) } ?? true, "a 4xx or just a closed connection")
        let many = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" + (0..<500).map { "X-\($0): y\r\n" }.joined() + "\r\n"
        let second = try RawConnection(socket: server.socket)
        second.send(many.utf8)
        #expect(second.readUntilClosed(timeout: 10).closed, "too many header fields")
        #expect(try server.request("GET", "/v2/health/ready").status == 200)
    }

    /// Slowloris: clients that keep sending a byte every half second, so they are never idle.
    /// One trickles its headers (never a request, so the idle timeout ends it), one its body
    /// (cut off by the body deadline); both are gone within seconds, and others are served.
    @Test(arguments: [
        ("headers", "POST /v1/classify HTTP/1.1\r\nHost: x\r\n", "X-Slow: yes\r\n"),
        ("body", "POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", String(repeating: "\u{FF}", count: 100)),
    ])
    func tricklingSendersAreCutOff(part: String, opening: String, trickle: String) throws {
        let server = try ServerHarness(["--model", "tiny", "--idle-timeout", "3", "--body-timeout", "4"])
        defer { server.stop() }
        let slow = try RawConnection(socket: server.socket)
        slow.send(opening.utf8)
        let started = Date()
        let sender = Thread {
            for byte in trickle.utf8 where Date().timeIntervalSince(started) < 30 {
                guard slow.send([byte]) else { return }
                usleep(500_000)
            }
        }
        sender.start()
        #expect(try server.request("POST", "/v1/classify", body: try Fixtures.image("cat.jpg")).status == 200)
        let answer = slow.readUntilClosed(timeout: 20)
        let elapsed = Date().timeIntervalSince(started)
        #expect(answer.closed && elapsed < 12, "a client trickling its \(part) was still connected after \(Int(elapsed)) s")
        while !sender.isFinished { usleep(10_000) }
        #expect(try server.request("GET", "/v2/health/ready").status == 200)
    }

    /// Bursts of 12 MP photos (3–4 MB bodies, sixteen at a time) must not leave the front
    /// holding their memory once answered: glibc keeps such bursts resident in its heaps unless
    /// large buffers are mapped one by one (measured: +135 MB after three bursts, against +6 MB).
    @Test func burstsOfCameraPhotosDoNotStayResident() throws {
        let folder = TestPaths.models.appendingPathComponent("bench/camera")
        let photos = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "jpg" }.sorted { $0.path < $1.path }.map { try Data(contentsOf: $0) }
        try #require(!photos.isEmpty, "tools/setup.sh makes the camera-size photos in \(folder.path)")
        let requests = try photos.map { try Self.imageRequest($0) }
        let server = try ServerHarness(["--model", "tiny"])
        defer { server.stop() }
        #expect(try server.request("POST", requests[0].path, body: requests[0].body, headers: requests[0].headers).status == 200)
        let before = try #require(residentBytes(server.process.processIdentifier))
        let statuses = Mutex<[Int]>([])
        for _ in 0..<3 {
            let burst = DispatchGroup()
            for index in 0..<16 {
                burst.enter()
                Thread {
                    let request = requests[index % requests.count]
                    let status = (try? server.request("POST", request.path, body: request.body, headers: request.headers).status) ?? 0
                    statuses.withLock { $0.append(status) }
                    burst.leave()
                }.start()
            }
            burst.wait()
        }
        let after = try #require(residentBytes(server.process.processIdentifier))
        #expect(statuses.withLock { $0 } == Array(repeating: 200, count: 48))
        #expect(after - before < 40 << 20, "the front grew from \(before >> 20) MB to \(after >> 20) MB and kept it")
    }

    /// A client that sends part of a request and then nothing holds its connection only until
    /// the idle timeout, one that gives up halfway loses only its own request, and thousands
    /// of idle connections cost the server nothing it cannot spare.
    @Test func slowSendersAndThousandsOfIdleConnections() throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let wanted = rlim_t(2_000 + 200)
        if limit.rlim_cur < wanted {
            limit.rlim_cur = min(limit.rlim_max, wanted)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        let connections = Int(min(limit.rlim_cur, wanted)) - 200
        let server = try ServerHarness(["--model", "tiny", "--idle-timeout", "3"])
        defer { server.stop() }
        let stalled = try RawConnection(socket: server.socket)
        stalled.send("POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n\u{FF}\u{D8}".utf8)
        // A body cut short: the client stops writing after 2 of 100000 bytes.
        let truncated = try RawConnection(socket: server.socket)
        truncated.send("POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n\u{FF}\u{D8}".utf8)
        shutdown(truncated.fd, Int32(SHUT_WR))
        let cut = truncated.readUntilClosed(timeout: 15)
        #expect(cut.closed && statusCode(cut.bytes).map { (400...499).contains($0) } ?? true, "a truncated body ends its connection")
        let idle = try (0..<connections).map { _ in try RawConnection(socket: server.socket) }
        let good = try server.request("POST", "/v1/classify", body: try Fixtures.image("cat.jpg"))
        #expect(good.status == 200, "a good request while \(connections) connections idle and one stalls")
        #expect(stalled.readUntilClosed(timeout: 15).closed, "the stalled sender is cut off")
        #expect(idle.prefix(20).allSatisfy { $0.readUntilClosed(timeout: 15).closed }, "idle connections are closed")
        #expect(try server.request("GET", "/v2/health/ready").status == 200)
        #expect(connections >= 1_000, "only \(connections) descriptors to spare")
    }
}
