import Foundation
import Hummingbird
import ModelRegistry
import NIOCore

/// Triton's model repository extension: the index of every model and version with its state
/// and why, and loading and unloading models by name (`--model-control explicit` or `poll`).
struct RepositoryRoutes {
    let registry: ModelRegistry

    func add(to router: Router<ConnectionContext>) {
        router.post("/v2/repository/index") { request, _ in
            var request = request
            let body = try await request.collectBody(upTo: 4096)
            let readyOnly = (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])?["ready"] as? Bool ?? false
            return try jsonResponse(registry.index().filter { !readyOnly || $0.state == .ready }.map(\.json))
        }
        router.post("/v2/repository/models/{model}/load") { _, context in
            try await control(context) { (name: String) async throws(RegistryError) in try await registry.load(name) }
        }
        router.post("/v2/repository/models/{model}/unload") { _, context in
            try await control(context) { (name: String) async throws(RegistryError) in try await registry.unload(name) }
        }
    }

    /// Runs a load or unload of the route's model: 200 with an empty object once done, 400
    /// naming why not (control off, an unknown model, a failed load), as Triton answers.
    private func control(_ context: ConnectionContext, _ body: (String) async throws(RegistryError) -> Void) async throws -> Response {
        guard registry.control != .none else { throw ServerError.badRequest(RegistryError.controlDisabled.description) }
        do {
            try await body(context.parameters.get("model") ?? "")
        } catch {
            throw ServerError.badRequest(error.description)
        }
        return try jsonResponse([String: Any]())
    }
}

extension ModelRegistry.IndexEntry {
    /// As Triton's index lists it: name, version and state, and the reason where there is one.
    var json: [String: Any] {
        var object: [String: Any] = ["name": name, "state": state.rawValue, "reason": reason]
        if let version { object["version"] = version }
        return object
    }
}
