import Classification
import Foundation
import Hummingbird
import NIOCore

/// `POST /v1/classify?top=K` with an image as the body: the top classes as JSON, for curl.
/// It takes the same path to the pool as KServe `infer`, with one image as the only sample.
struct ClassifyRoute<Model: ServedModel> {
    let path: InferencePath<Model>

    func add(to router: Router<ConnectionContext>) {
        router.post("/v1/classify") { request, context in
            let model = path.model
            let topText = request.uri.queryParameters.get("top") ?? "5"
            guard let top = Int(topText), (1...model.classes).contains(top) else {
                throw ServerError.badRequest("top must be a whole number from 1 to \(model.classes), not \"\(topText.prefix(40))\"")
            }
            try path.requireServing()
            let (body, held, received) = try await path.body(of: request)
            defer { held.release() }
            let (scores, poolStages) = try await path.scores(for: .images([body]), request: request, context: context, held: held)
            let stages = received.merging(poolStages)
            return try path.response(stages) {
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
