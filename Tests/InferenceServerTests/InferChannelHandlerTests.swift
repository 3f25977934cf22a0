import Foundation
import Glibc
import TestSupport
import Testing

/// KServe `infer`, answered in the connection's pipeline, beside the router's routes on the
/// same keep-alive connection, against a real server on its socket.
@Suite struct InferChannelHandlerTests {
    /// `POST PATH` with an infer body: one BYTES image for the model's `encoded_image` input.
    static func inferRequest(_ path: String, image: Data, headers: [String] = []) throws -> [UInt8] {
        let header = try JSONSerialization.data(withJSONObject: [
            "inputs": [["name": "encoded_image", "shape": [1], "datatype": "BYTES", "parameters": ["binary_data_size": image.count + 4]]],
            "outputs": [["name": "logits", "parameters": ["classification": 1]]],
        ])
        let body = header + lengthPrefixed([image])
        let head = (["POST \(path) HTTP/1.1", "Host: localhost", "Content-Length: \(body.count)", "Inference-Header-Content-Length: \(header.count)"] + headers)
            .joined(separator: "\r\n") + "\r\n\r\n"
        return Array(head.utf8) + Array(body)
    }

    static func get(_ path: String) -> [UInt8] { Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8) }

    /// Requests sent back to back on one connection, before any answer, are answered in their
    /// order, whichever of the pipeline or the router answers each: a health check behind an
    /// `infer` waits for it even though it is ready first. A refused `infer` (its body still
    /// sent) leaves the connection usable.
    @Test func pipelinedRequestsAreAnsweredInTheOrderTheyCame() throws {
        let server = try ServerHarness(["--model", "tiny"])
        defer { server.stop() }
        let image = try Fixtures.image("cat.jpg")
        let connection = try RawConnection(socket: server.socket)
        connection.send(
            try Self.inferRequest("/v2/models/tiny/infer", image: image) + Self.get("/v2/health/ready")
                + (try Self.inferRequest("/v2/models/nothing/infer", image: image)) + Self.get("/v2/models/tiny")
                + (try Self.inferRequest("/v2/models/tiny/versions/1/infer", image: image)))
        let responses = connection.readResponses(5, timeout: 30)
        #expect(responses.map(\.status) == [200, 200, 404, 200, 200])
        guard responses.count == 5 else { return }
        let json = responses.map { try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any] }
        #expect(json[0]?["model_name"] as? String == "tiny" && json[0]?["outputs"] != nil, "an infer reply first")
        #expect((json[2]?["error"] as? String)?.contains("unknown model \"nothing\"") == true)
        #expect(json[3]?["name"] as? String == "tiny" && json[3]?["inputs"] != nil, "the model's metadata fourth")
        #expect(json[4]?["model_version"] as? String == "1" && json[4]?["outputs"] != nil, "an infer reply last")
        #expect(responses.allSatisfy { $0.headers["server"] == "visionpool" && $0.headers["date"]?.hasSuffix(" GMT") == true })
    }

    /// `Connection: close` gets its answer, then the connection closes.
    @Test func connectionCloseIsAnsweredThenClosed() throws {
        let server = try ServerHarness(["--model", "tiny"])
        defer { server.stop() }
        let connection = try RawConnection(socket: server.socket)
        connection.send(try Self.inferRequest("/v2/models/tiny/infer", image: Fixtures.image("cat.jpg"), headers: ["Connection: close"]))
        let response = connection.readResponses(1, timeout: 30).first
        #expect(response?.status == 200)
        #expect(response?.headers["connection"] == "close")
        #expect(connection.readUntilClosed(timeout: 30).closed)
    }

    /// A graceful stop lets an `infer` already running finish: its answer is written, then the
    /// keep-alive connection is closed and the server exits cleanly.
    @Test func aGracefulStopAnswersTheInferInFlightThenClosesItsConnection() async throws {
        let server = try ServerHarness(["--model", "tiny", "--workers", "1", "--max-batch", "1"])
        defer { server.stop() }
        let worker = try #require(childrenOf(server.process.processIdentifier).first)
        kill(worker, SIGSTOP)
        let connection = try RawConnection(socket: server.socket)
        connection.send(try Self.inferRequest("/v2/models/tiny/infer", image: Fixtures.image("cat.jpg")))
        #expect(await eventually(within: 30) { (try? server.metric("visionpool_in_flight_requests")) == 1 }, "the request is running")
        kill(server.process.processIdentifier, SIGTERM)
        #expect(await eventually(within: 30) { server.logText.contains("stopping gracefully") })
        kill(worker, SIGCONT)
        #expect(connection.readResponses(1, timeout: 30).first?.status == 200)
        #expect(connection.readUntilClosed(timeout: 30).closed, "the connection closes once its answer is out")
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus == 0, "\(server.logText)")
    }
}
