import Classification
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import InferenceEngines
import InferenceServer
import Logging
import ModelCatalog
import ModelRegistry
import NIOCore
import TestSupport
import Testing
import WorkerPool

/// The HTTP service in process through Hummingbird's test client on a live loopback server
/// (KServe `infer` is answered in the connection's pipeline, so it needs a real connection),
/// over a real pool of `visionpool-worker`s running the `tiny` model: no binary, no curl.
@Suite struct RouteTests {
    /// The service over a fresh one-worker pool of `model`, handed to `body`, then stopped, with
    /// the server's default 30 s request deadline.
    func withRoutes(model name: String = "tiny", engine: EngineKind = .openvino, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        var quiet = Logger(label: "routes")
        quiet.logLevel = .error
        let logger = quiet
        let settings = ModelRegistry.Settings(engine: EngineOptions(kind: engine, precision: .f32), workers: 1, threads: 1) {
            $0.workerExecutable = TestPaths.workerExecutable
            $0.logger = logger
        }
        let registry = ModelRegistry(
            source: .entries([ServedEntry(entry: try Fixtures.catalog.entry(named: name), version: "1")]), control: .none, settings: settings, logger: logger)
        await registry.loadAtStart()
        let http = HTTPService(
            registry: registry, settings: RouteSettings(maxBodyBytes: 16 << 20, memory: MemoryBudget(limit: 512 << 20), requestTimeout: .seconds(30)),
            metrics: ServerMetrics())
        do {
            try await Application(router: http.router, server: http.server()).test(.live) { client in try await body(client) }
        } catch {
            await registry.stopAll(gracePeriod: .seconds(10))
            throw error
        }
        await registry.stopAll(gracePeriod: .seconds(10))
    }

    @Test("health and metadata", arguments: [EngineKind.openvino, .onnxruntime])
    func healthAndMetadata(engine: EngineKind) async throws {
        try await withRoutes(engine: engine) { client in
            #expect(try await client.execute(uri: "/v2/health/live", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/v2/health/ready", method: .get).status == .ok)
            let server = try await client.execute(uri: "/v2", method: .get).json
            #expect(server["name"] as? String == "visionpool")
            #expect((server["extensions"] as? [String])?.contains("classification") == true)
            let model = try await client.execute(uri: "/v2/models/tiny/versions/1", method: .get).json
            let inputs = try #require(model["inputs"] as? [[String: Any]])
            #expect(inputs.first?["name"] as? String == "input" && inputs.first?["datatype"] as? String == "FP32")
            #expect((inputs.first?["shape"] as? [Int]) == [-1, 3, 224, 224])
            #expect(inputs.count == 2 && inputs[1]["name"] as? String == "encoded_image" && inputs[1]["datatype"] as? String == "BYTES")
            #expect((inputs.last?["shape"] as? [Int]) == [-1], "encoded images, one per element")
            #expect(model["engine"] as? String == engine.rawValue)
            #expect(try await client.execute(uri: "/v2/models/tiny/ready", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/v2/models/tiny/versions/2/ready", method: .get).status == .notFound)
            let missing = try await client.execute(uri: "/v2/models/nope", method: .get)
            #expect(missing.status == .notFound && (missing.json["error"] as? String)?.contains("nope") == true)
            let noRoute = try await client.execute(uri: "/v3", method: .get)
            #expect(noRoute.status == .notFound && noRoute.json["error"] is String, "the framework's own errors are JSON too")
        }
    }

    @Test func fp32TensorsAsJSONAndAsBinaryAgree() async throws {
        try await withRoutes { client in
            let values = (0..<sampleCount).map { Float($0 % 251) / 251 - 0.5 }
            let json = try JSONSerialization.data(withJSONObject: [
                "inputs": [["name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "data": values.map(Double.init)]],
            ])
            let asJSON = try await client.execute(uri: "/v2/models/tiny/infer", method: .post, body: ByteBuffer(bytes: json))
            #expect(asJSON.status == .ok, "\(String(buffer: asJSON.body))")
            let jsonScores = try #require(((asJSON.json["outputs"] as? [[String: Any]])?.first?["data"] as? [NSNumber])?.map(\.floatValue))
            #expect(jsonScores.count == 1000)

            let raw = values.withUnsafeBufferPointer { Data(buffer: $0) }
            let (body, headers) = try binaryBody([
                "inputs": [["name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "parameters": ["binary_data_size": raw.count]]],
                "outputs": [["name": "logits", "parameters": ["binary_data": true]]],
            ], raw)
            let asBinary = try await client.execute(uri: "/v2/models/tiny/infer", method: .post, headers: fields(headers), body: ByteBuffer(bytes: body))
            #expect(asBinary.status == .ok)
            let jsonLength = try #require(asBinary.headers[HTTPField.Name("Inference-Header-Content-Length")!].flatMap(Int.init))
            let reply = Data(buffer: asBinary.body)
            let binaryScores = reply.dropFirst(jsonLength).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            #expect(binaryScores.count == 1000)
            #expect(zip(binaryScores, jsonScores).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) })
            let timing = StageTimes(serverTiming: asBinary.headers[HTTPField.Name("Server-Timing")!] ?? "")
            #expect(timing[.inference] != nil && timing[.queue] != nil, "Server-Timing: \(timing)")
        }
    }

    /// `/v1/classify` and KServe `infer` on the same image take one path: same top class,
    /// same stage metrics, same refusals.
    @Test func classifyAndInferShareOnePath() async throws {
        try await withRoutes(model: "efficientnet-lite0") { client in
            let photo = try Fixtures.sample("chelsea.png")
            let classified = try await client.execute(uri: "/v1/classify?top=3", method: .post, body: ByteBuffer(bytes: photo))
            #expect(classified.status == .ok, "\(String(buffer: classified.body))")
            let top = try #require(classified.json["top"] as? [[String: Any]])
            #expect(top.count == 3 && catClasses.contains(top[0]["class_index"] as? Int ?? -1))
            let timings = try #require(classified.json["timings_ms"] as? [String: Double])
            #expect(Set(timings.keys) == ["receive", "queue", "decode", "preprocess", "inference", "handoff"], "\(timings)")
            // The header also times the response's encoding, which the body cannot hold.
            let classifyTiming = StageTimes(serverTiming: classified.headers[HTTPField.Name("Server-Timing")!] ?? "")
            #expect(Set(classifyTiming.seconds.keys) == Set(timings.keys.compactMap(Stage.init(rawValue:))).union([.respond]), "\(classifyTiming)")

            let payload = lengthPrefixed([photo])
            let (body, headers) = try binaryBody([
                "inputs": [["name": "input", "shape": [1], "datatype": "BYTES", "parameters": ["binary_data_size": payload.count]]],
                "outputs": [["name": "logits", "parameters": ["classification": 1]]],
            ], payload)
            let inferred = try await client.execute(uri: "/v2/models/efficientnet-lite0/infer", method: .post, headers: fields(headers), body: ByteBuffer(bytes: body))
            let strings = try #require((inferred.json["outputs"] as? [[String: Any]])?.first?["data"] as? [String])
            #expect(Int(strings[0].split(separator: ":")[1]) == top[0]["class_index"] as? Int)
            let inferTiming = StageTimes(serverTiming: inferred.headers[HTTPField.Name("Server-Timing")!] ?? "")
            #expect(Set(inferTiming.seconds.keys) == Set(Stage.allCases), "every stage of the front and the pool: \(inferTiming)")

            for (uri, request) in [("/v1/classify", try Fixtures.image("bomb.png")), ("/v1/classify", try Fixtures.image("truncated.jpg"))] {
                _ = try await client.execute(uri: uri, method: .post, body: ByteBuffer(bytes: request))
            }
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            for line in [
                #"visionpool_requests_total{model="efficientnet-lite0",version="1",outcome="200",protocol="http"} 2"#,
                #"visionpool_requests_total{model="efficientnet-lite0",version="1",outcome="413",protocol="http"} 1"#,
                #"visionpool_requests_total{model="efficientnet-lite0",version="1",outcome="400",protocol="http"} 1"#,
                #"visionpool_pool_healthy{model="efficientnet-lite0",version="1"} 1.0"#,
                #"visionpool_workers_ready{model="efficientnet-lite0",version="1"} 1.0"#,
                #"visionpool_stage_seconds_count{model="efficientnet-lite0",version="1",stage="inference"} 2"#,
                #"visionpool_stage_seconds_count{model="efficientnet-lite0",version="1",stage="decode"} 2"#,
                #"visionpool_stage_seconds_count{model="efficientnet-lite0",version="1",stage="receive"} 2"#,
                #"visionpool_stage_seconds_count{model="efficientnet-lite0",version="1",stage="parse"} 1"#,
                #"visionpool_stage_seconds_count{model="efficientnet-lite0",version="1",stage="respond"} 2"#,
                #"visionpool_inflight_bytes 0.0"#,
                #"visionpool_model_inflight_bytes{model="efficientnet-lite0"} 0.0"#,
            ] {
                #expect(metrics.contains(line), "\(line)")
            }

            // The encoded_image input the metadata lists takes the same images, and only images.
            let (imageBody, imageHeaders) = try binaryBody([
                "inputs": [["name": "encoded_image", "shape": [1], "datatype": "BYTES", "parameters": ["binary_data_size": payload.count]]],
                "outputs": [["name": "logits", "parameters": ["classification": 1]]],
            ], payload)
            let throughImageInput = try await client.execute(
                uri: "/v2/models/efficientnet-lite0/infer", method: .post, headers: fields(imageHeaders), body: ByteBuffer(bytes: imageBody))
            #expect((throughImageInput.json["outputs"] as? [[String: Any]])?.first?["data"] as? [String] == strings)
            let tensorAsImage = try await client.execute(
                uri: "/v2/models/efficientnet-lite0/infer", method: .post,
                body: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: [
                    "inputs": [["name": "encoded_image", "shape": [1, 3, 224, 224], "datatype": "FP32", "data": [0]]]])))
            #expect(tensorAsImage.status == .badRequest && (tensorAsImage.json["error"] as? String)?.contains("takes BYTES") == true)
        }
    }

    @Test func badRequestsGetAPrecise4xxAndTheRoutesStayUp() async throws {
        try await withRoutes { client in
            for bad in ServerTests.badRequests {
                let reply = try await client.execute(uri: bad.path, method: .post, headers: fields(bad.headers), body: ByteBuffer(bytes: bad.body))
                #expect(Int(reply.status.code) == bad.status, "\(bad.path) \(String(buffer: reply.body))")
                #expect((reply.json["error"] as? String)?.contains(bad.message) == true, "\(bad.path) \(String(buffer: reply.body))")
            }
            for (name, status) in [("truncated.jpg", 400), ("garbage.bin", 400), ("bomb.png", 413), ("bomb.jpg", 413), ("empty.jpg", 400)] {
                let reply = try await client.execute(uri: "/v1/classify", method: .post, body: ByteBuffer(bytes: try Fixtures.image(name)))
                #expect(Int(reply.status.code) == status, "\(name): \(String(buffer: reply.body))")
                #expect(reply.json["error"] is String, "\(name)")
            }
            #expect(try await client.execute(uri: "/v1/classify", method: .post, body: ByteBuffer(bytes: try Fixtures.image("cat.jpg"))).status == .ok)
            #expect(try await client.execute(uri: "/v2/health/ready", method: .get).status == .ok)
        }
    }
}

private func fields(_ headers: [String: String]) -> HTTPFields {
    HTTPFields(headers.map { HTTPField(name: HTTPField.Name($0.key)!, value: $0.value) })
}

extension TestResponse {
    /// The body as a JSON object; empty when it is not one.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
    }
}
