import Foundation
import HTTPTypes
import Hummingbird
import ModelRegistry
import NIOCore

/// Liveness fails only when the process cannot recover by itself (a pool with no worker ready
/// for `--liveness-timeout`), so that an orchestrator restarts it. The server is ready while it
/// is not stopping, serves at least one model, and every model version it serves has a worker
/// ready; a model that failed to load or was unloaded serves nothing and does not count (the
/// repository index says why), one still loading does not either. A model is ready when its
/// newest version serves. The status says it (200 or 503) for probes and Triton's client; the
/// body says it too, `{"live": true}`, `{"ready": true}`, `{"name": …, "ready": true}`, as
/// KServe's SDK reads it, and a failing one adds the reason as `"error"`.
struct HealthRoutes {
    let registry: ModelRegistry
    let core: InferenceCore

    func add(to router: Router<ConnectionContext>) {
        router.get("/v2/health/live") { _, _ in
            let failing = registry.loaded.filter { !$0.isLive }
            return try health(
                ["live": failing.isEmpty],
                failure: failing.first.map { "the worker pool of \($0.name) version \($0.version) cannot recover: \($0.pool.status.health)" })
        }
        router.get("/v2/health/ready") { _, _ in
            let problem = registry.readinessProblem
            return try health(["ready": problem == nil], failure: problem.map { "not ready: \($0)" })
        }
        // Ready or not (503) for a model the server knows (loaded, loading, unloaded); 404 otherwise.
        let modelReady: @Sendable (Request, ConnectionContext) async throws -> Response = { _, context in
            let name = context.parameters.get("model") ?? "", version = context.parameters.get("version")
            switch registry.lookup(name, version: version) {
            case .served(let model):
                return try health(
                    ["name": model.name, "ready": model.isReady], failure: model.isReady ? nil : "model \(model.name) is not ready: \(model.readinessProblem)")
            case .notServing(let state, let reason):
                return try health(["name": name, "ready": false], failure: "model \(name) is \(state.rawValue.lowercased()): \(reason)")
            case .unknown:
                _ = try core.model(name, version: version)
                return try health(["name": name, "ready": false], failure: "model \(name) is not served")
            }
        }
        router.get("/v2/models/{model}/ready", use: modelReady)
        router.get("/v2/models/{model}/versions/{version}/ready", use: modelReady)
    }
}

/// 200 with `fields`, or 503 with them and the reason as `"error"` when there is a `failure`.
func health(_ fields: [String: Any], failure: String?) throws -> Response {
    var body = fields
    if let failure { body["error"] = failure }
    return try jsonResponse(body, status: failure == nil ? .ok : .serviceUnavailable)
}
