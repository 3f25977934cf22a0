import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// KServe v2 `infer`: JSON, or JSON plus binary tensor data; FP32 tensors or encoded images (BYTES).
struct InferRoutes<Model: ServedModel> {
    let path: InferencePath<Model>

    func add(to router: Router<ConnectionContext>) {
        let infer: @Sendable (Request, ConnectionContext) async throws -> Response = { request, context in
            let model = path.model
            try context.requireModel(model)
            try path.requireServing()
            var (body, held, stages) = try await path.body(of: request)
            defer { held.release() }
            let headerLength = try request.headers[HTTPField.Name.inferenceHeaderContentLength].map { text throws(ServerError) in
                guard let length = Int(text) else { throw .badRequest("Inference-Header-Content-Length must be a number") }
                return length
            }
            let manifest = model.manifest
            let parsed = try stages.time(.parse) {
                try InferRequest(
                    body: body, jsonLength: headerLength, sampleShape: manifest.input.shape, inputName: manifest.input.name,
                    outputName: manifest.output.name, maxSamples: model.maxSamplesPerRequest, memory: held)
            }
            let (scores, poolStages) = try await path.scores(
                for: parsed.samples, request: request, context: context, timeoutParameter: parsed.timeout, held: held)
            return try path.response(stages.merging(poolStages)) {
                let reply = try InferResponse(
                    model: model.name, id: parsed.id, outputs: parsed.outputs, batch: parsed.samples.count, classes: model.classes,
                    scores: scores, classify: model.classificationStrings)
                var headers: HTTPFields = [.contentType: reply.jsonLength == nil ? "application/json" : "application/octet-stream"]
                if let length = reply.jsonLength { headers[HTTPField.Name.inferenceHeaderContentLength] = String(length) }
                return (headers, reply.body)
            }
        }
        router.post("/v2/models/{model}/infer", use: infer)
        router.post("/v2/models/{model}/versions/{version}/infer", use: infer)
    }
}
