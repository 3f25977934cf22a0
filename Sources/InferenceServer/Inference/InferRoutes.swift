import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// KServe v2 `infer` over HTTP: JSON, or JSON plus binary tensor data; FP32 tensors or encoded
/// images (BYTES). Reads the body into the core's request and writes its reply back.
struct InferRoutes {
    let http: HTTPInference

    func add(to router: Router<ConnectionContext>) {
        let infer: @Sendable (Request, ConnectionContext) async throws -> Response = { request, context in
            try await http.counting(context) {
                let started = ContinuousClock.now
                let core = http.core
                let model = try http.model(context)
                do {
                    try core.requireServing(model)
                    var (body, held, stages) = try await http.body(of: request, for: model)
                    let parsed: InferenceRequest
                    let timeout: Duration
                    do {
                        let headerLength = try request.headers[HTTPField.Name.inferenceHeaderContentLength].map { text throws(ServerError) in
                            guard let length = Int(text) else { throw .badRequest("Inference-Header-Content-Length must be a number") }
                            return length
                        }
                        parsed = try stages.time(.parse) {
                            try InferRequestBody.parse(
                                body, jsonLength: headerLength, manifest: model.manifest, maxSamples: model.maxSamplesPerRequest, memory: held)
                        }
                        timeout = try http.deadline(request, parameter: parsed.timeoutParameter)
                    } catch {
                        held.release()
                        throw error
                    }
                    let reply = try await http.whileConnected(context) { onAbandon throws(ServerError) in
                        try await core.infer(
                            parsed, on: model, held: held, within: timeout, on: context.channel.eventLoop, logger: context.logger,
                            onAbandon: onAbandon)
                    }
                    return try http.response(stages.merging(reply.stages), samples: parsed.samples.count, since: started, on: model) {
                        let encoded = try InferResponse(reply)
                        var headers: HTTPFields = [.contentType: encoded.jsonLength == nil ? "application/json" : "application/octet-stream"]
                        if let length = encoded.jsonLength { headers[HTTPField.Name.inferenceHeaderContentLength] = String(length) }
                        return (headers, encoded.body)
                    }
                } catch {
                    model.statistics.failed(seconds: (ContinuousClock.now - started).seconds)
                    throw error
                }
            }
        }
        router.post("/v2/models/{model}/infer", use: infer)
        router.post("/v2/models/{model}/versions/{version}/infer", use: infer)
    }
}
