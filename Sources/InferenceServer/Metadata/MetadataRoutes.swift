import Foundation
import Hummingbird
import NIOCore

/// The server's and the model's metadata.
struct MetadataRoutes<Model: ServedModel> {
    let model: Model

    func add(to router: Router<ConnectionContext>) {
        router.get("/v2") { _, _ in
            try jsonResponse(["name": ServerIdentity.name, "version": ServerIdentity.version, "extensions": ServerIdentity.extensions])
        }
        router.get("/v2/models") { _, _ in try jsonResponse(["models": [model.name]]) }
        let metadata: @Sendable (Request, ConnectionContext) async throws -> Response = { _, context in
            try context.requireModel(model)
            return try jsonResponse(model.metadata)
        }
        router.get("/v2/models/{model}", use: metadata)
        router.get("/v2/models/{model}/versions/{version}", use: metadata)
    }
}

/// What the server metadata says over both protocols.
enum ServerIdentity {
    static let name = "visionpool"
    static let version = "0.1.0"
    static let extensions = ["classification", "binary_tensor_data"]
}

func jsonResponse(_ object: [String: Any]) throws -> Response {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes, .sortedKeys])
    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}
