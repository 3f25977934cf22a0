import Classification
import Foundation
import Hummingbird
import ModelRegistry
import NIOCore

/// `POST /v1/models/NAME/classify?top=K` with an image as the body: the top classes as JSON,
/// for curl; `/v1/classify` for the only model served (or the first one named at start). It
/// takes the same path to the pool as KServe `infer`, with one image as the only sample.
struct ClassifyRoute {
    let http: HTTPInference

    func add(to router: Router<ConnectionContext>) {
        let classify: @Sendable (Request, ConnectionContext) async throws -> Response = { request, context in
            let defaultModel = context.parameters.get("model") == nil ? try? http.core.defaultModel() : nil
            return try await http.counting(context, model: defaultModel) {
                let model = context.parameters.get("model") == nil ? try http.core.defaultModel() : try http.model(context)
                return try await answer(request, context, model)
            }
        }
        router.post("/v1/classify", use: classify)
        router.post("/v1/models/{model}/classify", use: classify)
    }

    private func answer(_ request: Request, _ context: ConnectionContext, _ model: LoadedModel) async throws -> Response {
        let started = ContinuousClock.now
        let topText = request.uri.queryParameters.get("top") ?? "5"
        guard let top = Int(topText), (1...model.classes).contains(top) else {
            throw ServerError.badRequest("top must be a whole number from 1 to \(model.classes), not \"\(topText.prefix(40))\"")
        }
        do {
            try http.core.requireServing(model)
            let (body, held, received) = try await http.body(of: request, for: model)
            let timeout: Duration
            do {
                timeout = try http.deadline(request)
            } catch {
                held.release()
                throw error
            }
            let (scores, poolStages) = try await http.whileConnected(context) { onAbandon throws(ServerError) in
                try await http.core.scores(
                    for: [.image(body)], on: model, held: held, within: timeout, on: context.channel.eventLoop, logger: context.logger,
                    onAbandon: onAbandon)
            }
            let stages = received.merging(poolStages)
            return try http.response(stages, samples: 1, since: started, on: model) {
                let encoder = JSONEncoder()
                encoder.keyEncodingStrategy = .convertToSnakeCase
                encoder.outputFormatting = .sortedKeys
                let reply = ClassifyReply(model: model.name, version: model.version, top: model.topClasses(scores[...], k: top), timingsMs: stages.milliseconds)
                return ([.contentType: "application/json"], try encoder.encode(reply))
            }
        } catch {
            model.statistics.failed(seconds: (ContinuousClock.now - started).seconds)
            throw error
        }
    }
}

private struct ClassifyReply: Encodable {
    let model: String
    let version: String
    let top: [ScoredClass]
    let timingsMs: [String: Double]
}
