import Foundation
import HTTPTypes
import Hummingbird
import ModelRegistry
import NIOCore

/// The server's and each model's metadata, and Triton's read-only model extensions: a model's
/// configuration (`/config`) and its statistics (`/stats`).
struct MetadataRoutes {
    let registry: ModelRegistry
    let core: InferenceCore

    func add(to router: Router<ConnectionContext>) {
        router.get("/v2") { _, _ in
            try jsonResponse(["name": ServerIdentity.name, "version": ServerIdentity.version, "extensions": ServerIdentity.extensions])
        }
        router.get("/v2/models") { _, _ in try jsonResponse(["models": Set(registry.loaded.map(\.name)).sorted()]) }
        let metadata: @Sendable (Request, ConnectionContext) async throws -> Response = { _, context in
            let model = try model(context)
            return try jsonResponse(model.metadata(versions: versions(of: model.name)))
        }
        router.get("/v2/models/{model}", use: metadata)
        router.get("/v2/models/{model}/versions/{version}", use: metadata)
        let config: @Sendable (Request, ConnectionContext) async throws -> Response = { _, context in try jsonResponse(try model(context).tritonConfig) }
        router.get("/v2/models/{model}/config", use: config)
        router.get("/v2/models/{model}/versions/{version}/config", use: config)
        let statistics: @Sendable (Request, ConnectionContext) async throws -> Response = { _, context in
            let models = context.parameters.get("model") == nil ? registry.loaded : [try model(context)]
            return try jsonResponse(["model_stats": models.map(\.tritonStatistics)])
        }
        router.get("/v2/models/stats", use: statistics)
        router.get("/v2/models/{model}/stats", use: statistics)
        router.get("/v2/models/{model}/versions/{version}/stats", use: statistics)
    }

    private func model(_ context: ConnectionContext) throws(ServerError) -> LoadedModel {
        try core.model(context.parameters.get("model") ?? "", version: context.parameters.get("version"))
    }

    private func versions(of name: String) -> [String] {
        registry.loaded.filter { $0.name == name }.map(\.version)
    }
}

extension LoadedModel {
    /// Triton's statistics of one model version: requests by outcome with their cumulative
    /// nanoseconds, where the successful ones spent them, and the executions by batch size.
    var tritonStatistics: [String: Any] {
        let snapshot = statistics.snapshot
        let duration = { (value: ModelStatistics.Duration) -> [String: Any] in ["count": value.count, "ns": value.nanoseconds] }
        let executions = pool.status.executions
        return [
            "name": name, "version": version, "last_inference": snapshot.lastInference, "inference_count": snapshot.inferenceCount,
            "execution_count": executions.values.reduce(0) { $0 + $1.count },
            "inference_stats": [
                "success": duration(snapshot.success), "fail": duration(snapshot.fail), "queue": duration(snapshot.queue),
                "compute_input": duration(snapshot.computeInput), "compute_infer": duration(snapshot.computeInfer),
                "compute_output": duration(snapshot.computeOutput),
                "cache_hit": ["count": 0, "ns": 0], "cache_miss": ["count": 0, "ns": 0],
            ],
            "batch_stats": executions.keys.sorted().map { size -> [String: Any] in
                let execution = executions[size]!
                return [
                    "batch_size": size, "compute_input": ["count": execution.count, "ns": 0],
                    "compute_infer": ["count": execution.count, "ns": execution.inferenceNanoseconds], "compute_output": ["count": execution.count, "ns": 0],
                ]
            },
        ]
    }
}

/// What the server metadata says over both protocols.
enum ServerIdentity {
    static let name = "visionpool"
    static let version = "0.1.0"
    static let extensions = ["classification", "binary_tensor_data", "model_repository", "model_configuration", "statistics"]
}

func jsonResponse(_ object: Any, status: HTTPResponse.Status = .ok) throws -> Response {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes, .sortedKeys])
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}
