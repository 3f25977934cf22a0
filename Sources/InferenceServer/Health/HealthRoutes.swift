import HTTPTypes
import Hummingbird

/// Liveness fails only when the process cannot recover by itself, so that an orchestrator
/// restarts it; readiness fails whenever requests cannot be served now (warming up, every
/// worker crashed, stopping). Both answer 503 with the reason when they fail.
struct HealthRoutes<Model: ServedModel> {
    let model: Model

    func add(to router: Router<ConnectionContext>) {
        router.get("/v2/health/live") { _, _ in
            guard model.isLive else { throw ServerError(.serviceUnavailable, "the worker pool cannot recover: \(model.poolStatus.health)") }
            return HTTPResponse.Status.ok
        }
        router.get("/v2/health/ready") { _, _ in
            guard model.isReady else { throw ServerError(.serviceUnavailable, "not ready: \(model.readinessProblem)") }
            return HTTPResponse.Status.ok
        }
        let modelReady: @Sendable (Request, ConnectionContext) async throws -> HTTPResponse.Status = { _, context in
            try context.requireModel(model)
            guard model.isReady else { throw ServerError(.serviceUnavailable, "model \(model.name) is not ready: \(model.readinessProblem)") }
            return .ok
        }
        router.get("/v2/models/{model}/ready", use: modelReady)
        router.get("/v2/models/{model}/versions/{version}/ready", use: modelReady)
    }
}
