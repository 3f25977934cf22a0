import Foundation
import Glibc
import Synchronization
import TestSupport
import Testing

/// The front's memory under huge requests: JSON tensors parsed straight into floats, and a
/// budget for the bytes requests hold (`--max-inflight-bytes`) past which new ones get 503.
@Suite(.serialized) struct MemoryBudgetTests {
    static let path = "/v2/models/tiny/infer"
    /// Floats in one sample of the tiny model, [3, 224, 224].
    static let sampleCount = 3 * 224 * 224

    /// An FP32 infer request in JSON for `samples` samples, each number written with five
    /// decimals (8 or 9 bytes with its comma), from a fixed pseudo-random sequence. One sample's
    /// text is made and repeated, so that the test spends its CPU on the server, not here.
    static func jsonTensorBody(samples: Int) -> Data {
        var sample = [UInt8]()
        sample.reserveCapacity(sampleCount * 9)
        var state: UInt32 = 12345
        for _ in 0..<sampleCount {
            state = state &* 1_664_525 &+ 1_013_904_223
            let value = Int(state >> 8) % 200_000 - 100_000
            if value < 0 { sample.append(UInt8(ascii: "-")) }
            var digits = abs(value)
            var number = [UInt8](repeating: 0, count: 8)
            for place in stride(from: 6, through: 2, by: -1) {
                number[place] = UInt8(ascii: "0") + UInt8(digits % 10)
                digits /= 10
            }
            number[1] = UInt8(ascii: ".")
            number[0] = UInt8(ascii: "0") + UInt8(digits)
            number[7] = UInt8(ascii: ",")
            sample += number
        }
        var body = Data(#"{"inputs":[{"name":"input","shape":[\#(samples),3,224,224],"datatype":"FP32","data":["#.utf8)
        body.reserveCapacity(body.count + samples * sample.count + 8)
        for _ in 0..<samples { body.append(contentsOf: sample) }
        body.removeLast()  // the last comma
        body.append(contentsOf: "]}]}".utf8)
        return body
    }

    static func inflightBytes(_ server: ServerHarness) throws -> Int? {
        try server.metric("visionpool_inflight_bytes").map { Int($0) }
    }

    static func scores(_ reply: ServerHarness.Reply) -> [Double]? {
        ((reply.json?["outputs"] as? [[String: Any]])?.first?["data"] as? [NSNumber])?.map(\.doubleValue)
    }

    /// Numbers in every form JSON allows, nested as the shape is, give exactly the scores of
    /// the same floats sent as binary data: the parser rounds each number once, as `Float(_:)` does.
    @Test func jsonNumbersAreTheFloatsTheyWrite() throws {
        let forms = ["0.5", "-0", "1e-3", "2E+1", "-12.75e-1", "3", "0.000123456789", "-1.5E-2", "7.0e0", "0", "-0.0", "123456789", "1.17549435e-38"]
        let texts = (0..<Self.sampleCount).map { forms[$0 % forms.count] }
        let floats = texts.map { Float($0)! }
        let rows = stride(from: 0, to: texts.count, by: 224).map { "[" + texts[$0..<$0 + 224].joined(separator: ",") + "]" }
        let planes = stride(from: 0, to: rows.count, by: 224).map { "[" + rows[$0..<$0 + 224].joined(separator: ", ") + "]" }
        let json = #"{"inputs":[{"name":"input","shape":[1,3,224,224],"datatype":"FP32","data":[ [ \#(planes.joined(separator: ",\n")) ] ]}]}"#
        let binary = floats.withUnsafeBytes { Data($0) }
        let (binaryBody, headers) = try binaryBody(
            ["inputs": [["name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "parameters": ["binary_data_size": binary.count]]]], binary)
        let server = try ServerHarness(["--model", "tiny"])
        defer { server.stop() }
        let fromJSON = try server.request("POST", Self.path, body: Data(json.utf8))
        let fromBinary = try server.request("POST", Self.path, body: binaryBody, headers: headers)
        #expect(fromJSON.status == 200, "\(String(decoding: fromJSON.body.prefix(300), as: UTF8.self))")
        #expect(fromBinary.status == 200)
        let jsonScores = try #require(Self.scores(fromJSON)), binaryScores = try #require(Self.scores(fromBinary))
        #expect(jsonScores.count == 1000 && jsonScores == binaryScores)
    }

    /// Four parallel 60 MB JSON bodies once took the front from 86 MB to 4.1 GB (boxed
    /// numbers). Now each costs its body and its floats: the peak (VmHWM) stays within a small
    /// multiple of what the requests carry.
    @Test func parallelHugeJSONTensorsKeepTheFrontWithinASmallMultipleOfTheirSize() throws {
        let samples = 48
        let body = Self.jsonTensorBody(samples: samples)
        let tensorBytes = samples * Self.sampleCount * 4
        // The release build parses the four bodies in about a second and a half on 2 CPUs:
        // the server's own deadlines (30 s for a body, 30 s for a request) are ample.
        let server = try ServerHarness(["--model", "tiny"])
        defer { server.stop() }
        let pid = server.process.processIdentifier
        #expect(try server.request("POST", Self.path, body: Self.jsonTensorBody(samples: 1)).status == 200)
        let before = try #require(residentBytes(pid)), peakBefore = try #require(residentBytes(pid, peak: true))
        let statuses = Mutex<[Int]>([])
        let started = Date()
        let group = DispatchGroup()
        for _ in 0..<4 {
            group.enter()
            Thread {
                let reply = try? server.request("POST", Self.path, body: body)
                statuses.withLock { $0.append(reply?.status ?? 0) }
                group.leave()
            }.start()
        }
        group.wait()
        let elapsed = Date().timeIntervalSince(started)
        let peak = try #require(residentBytes(pid, peak: true)), after = try #require(residentBytes(pid))
        print("4 parallel \(body.count >> 20) MiB JSON bodies (\(tensorBytes >> 20) MiB tensors) in \(String(format: "%.1f", elapsed)) s: front RSS \(before >> 20) MB before (peak \(peakBefore >> 20) MB), peak \(peak >> 20) MB, \(after >> 20) MB after")
        #expect(statuses.withLock { $0 } == [200, 200, 200, 200])
        // Each request holds its body and its floats; allow half as much again for the body's growth while it is read.
        let bound = 4 * (body.count * 3 / 2 + tensorBytes)
        #expect(peak - before < bound, "the front peaked at \(peak >> 20) MB from \(before >> 20) MB, over the \(bound >> 20) MB the four requests account for")
        #expect(try Self.inflightBytes(server) == 0)
    }

    /// A client holding part of the budget (a declared 30 MB body it is slow to send) makes
    /// the next large request wait its turn with 503 and Retry-After, before its body is
    /// read; once the budget is free the same request succeeds, one larger than the whole
    /// budget is 413, and the budget is back to zero at the end.
    @Test func overTheBudgetNewRequestsGet503WithRetryAfterBeforeAllocating() async throws {
        let body = Self.jsonTensorBody(samples: 16)
        let server = try ServerHarness(["--model", "tiny", "--max-inflight-bytes", "40000000"])
        defer { server.stop() }
        var slow: RawConnection? = try RawConnection(socket: server.socket)
        slow?.send(Array("POST \(Self.path) HTTP/1.1\r\nHost: localhost\r\nContent-Length: 30000000\r\n\r\n{\"inputs\":".utf8))
        #expect(await eventually(within: 10) { (try? Self.inflightBytes(server)) == 30_000_000 }, "the slow client's body is reserved")

        let refused = try server.request("POST", Self.path, body: body)
        #expect(refused.status == 503, "\(String(decoding: refused.body.prefix(300), as: UTF8.self))")
        #expect(refused.headers["retry-after"] == "1")
        #expect((refused.json?["error"] as? String)?.contains("--max-inflight-bytes") == true)
        #expect(try server.request("GET", "/v2/health/ready").status == 200)

        slow = nil
        #expect(await eventually(within: 10) { (try? Self.inflightBytes(server)) == 0 }, "the slow client's reservation ends with its connection")
        let served = try server.request("POST", Self.path, body: body)
        #expect(served.status == 200, "\(String(decoding: served.body.prefix(300), as: UTF8.self))")
        #expect(Self.scores(served)?.count == 16 * 1000)

        let whole = try server.request("POST", Self.path, body: Self.jsonTensorBody(samples: 24))
        #expect(whole.status == 413, "\(String(decoding: whole.body.prefix(300), as: UTF8.self))")
        #expect(try Self.inflightBytes(server) == 0)
    }

    /// A timeout storm: camera-size JPEGs with a 1 ms deadline while the pool can finish
    /// nothing (its workers stopped). Each request is answered at once (504, or 503 once the
    /// budget is held), but the work that took a slot still holds its body and its decoded
    /// sample until it ends: its reservation stays in `visionpool_inflight_bytes` until then,
    /// never past `--max-inflight-bytes`, and so does the front's memory.
    @Test func aTimeoutStormKeepsTheFrontWithinItsBudget() async throws {
        let limit = 40_000_000
        let server = try ServerHarness(["--model", "tiny", "--max-inflight-bytes", String(limit)])
        defer { server.stop() }
        let pid = server.process.processIdentifier
        let images = try FileManager.default.contentsOfDirectory(at: TestPaths.models.appendingPathComponent("bench/camera"), includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "jpg" }.map { try Data(contentsOf: $0) }
        try #require(!images.isEmpty, "tools/setup.sh makes Models/bench/camera")
        #expect(try server.request("POST", "/v1/classify", body: images[0]).status == 200)
        let before = try #require(residentBytes(pid))
        let workers = server.workers
        workers.forEach { kill($0, SIGSTOP) }
        let statuses = Mutex<[Int]>([])
        let sampled = Mutex<[Int]>([])
        let storm = DispatchGroup()
        for client in 0..<24 {
            storm.enter()
            Thread.detachNewThread {
                for round in 0..<2 {
                    let status = (try? server.request("POST", "/v1/classify", body: images[(client + round) % images.count], headers: ["Timeout-Ms": "1"]).status) ?? 0
                    statuses.withLock { $0.append(status) }
                    if let held = try? Self.inflightBytes(server) { sampled.withLock { $0.append(held) } }
                }
                storm.leave()
            }
        }
        storm.wait()
        let answered = statuses.withLock { $0 }
        #expect(answered.count == 48 && answered.allSatisfy { $0 == 504 || $0 == 503 }, "\(Dictionary(grouping: answered) { $0 }.mapValues(\.count))")
        let heldWhileStopped = try #require(try Self.inflightBytes(server))
        #expect(heldWhileStopped > 0, "the requests whose samples are in the stopped workers' slots still hold their memory after their 504")
        #expect((sampled.withLock { $0 } + [heldWhileStopped]).allSatisfy { $0 <= limit })
        let peak = try #require(residentBytes(pid, peak: true))
        workers.forEach { kill($0, SIGCONT) }
        #expect(await eventually(within: 30) { (try? Self.inflightBytes(server)) == 0 }, "every reservation ends with its work")
        #expect(try server.request("POST", "/v1/classify", body: images[0]).status == 200)
        print("timeout storm of 48 camera-size JPEGs with Timeout-Ms 1, --max-inflight-bytes \(limit >> 20) MiB: \(Dictionary(grouping: answered) { $0 }.mapValues(\.count)); held after the answers \(heldWhileStopped >> 20) MiB; front RSS \(before >> 20) MB before, peak \(peak >> 20) MB")
        #expect(peak - before < limit + 48 << 20, "the front peaked at \(peak >> 20) MB from \(before >> 20) MB")
    }
}
