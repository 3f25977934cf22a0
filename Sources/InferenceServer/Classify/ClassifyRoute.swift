import Classification
import Foundation
import Hummingbird
import NIOCore

/// `POST /v1/classify?top=K` with an image as the body: the top classes as JSON, for curl.
/// It takes the same path to the pool as KServe `infer`, with one image as the only sample.
struct ClassifyRoute<Model: ServedModel> {
    let http: HTTPInference<Model>

    func add(to router: Router<ConnectionContext>) {
        router.post("/v1/classify") { request, context in
            let model = http.model
            let topText = request.uri.queryParameters.get("top") ?? "5"
            guard let top = Int(topText), (1...model.classes).contains(top) else {
                throw ServerError.badRequest("top must be a whole number from 1 to \(model.classes), not \"\(topText.prefix(40))\"")
            }
            try http.core.requireServing()
            let (body, held, received) = try await http.body(of: request)
            let timeout: Duration
            do {
                timeout = try http.deadline(request)
            } catch {
                held.release()
                throw error
            }
            let (scores, poolStages) = try await http.core.scores(
                for: [.image(body)], held: held, within: timeout, on: context.channel.eventLoop, logger: context.logger,
                onAbandon: http.abandonment(context))
            let stages = received.merging(poolStages)
            return try http.response(stages) {
                let encoder = JSONEncoder()
                encoder.keyEncodingStrategy = .convertToSnakeCase
                encoder.outputFormatting = .sortedKeys
                let reply = ClassifyReply(model: model.name, top: model.topClasses(scores[...], k: top), timingsMs: stages.milliseconds)
                return ([.contentType: "application/json"], try encoder.encode(reply))
            }
        }
    }
}

private struct ClassifyReply: Encodable {
    let model: String
    let top: [ScoredClass]
    let timingsMs: [String: Double]
}
