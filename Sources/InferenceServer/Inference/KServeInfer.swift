import Classification
import Foundation
import HTTPTypes
import Logging
import ModelRegistry
import NIOCore

/// KServe v2 `infer` over HTTP, `POST /v2/models/NAME[/versions/V]/infer`: JSON, or JSON plus
/// binary tensor data; FP32 tensors or encoded images (BYTES). `InferChannelHandler` reads the
/// request in the connection's pipeline and writes what this answers.
struct KServeInfer: Sendable {
    let http: HTTPInference

    /// A whole reply: status, header fields and body.
    struct Answer: Sendable {
        var status: HTTPResponse.Status
        var fields: HTTPFields
        var body: Data

        init(_ error: ServerError) {
            status = error.status
            (fields, body) = error.reply
        }

        init(ok fields: HTTPFields, body: Data) {
            status = .ok
            self.fields = fields
            self.body = body
        }
    }

    /// The model name and version an `infer` path names (percent-decoded); nil for any other
    /// path. Asked of every POST, so the common case stays clear of Foundation's decoding,
    /// which cost 15 µs a request.
    static func target(of path: String) -> (model: String, version: String?)? {
        var path = Substring(path)
        if let query = path.firstIndex(of: "?") { path = path[..<query] }
        let prefix = "/v2/models/", suffix = "/infer"
        guard path.count > prefix.count + suffix.count, path.hasPrefix(prefix), path.hasSuffix(suffix) else { return nil }
        // NAME, or NAME/versions/V
        let parts = path.dropFirst(prefix.count).dropLast(suffix.count).split(separator: "/", omittingEmptySubsequences: false)
        func decoded(_ part: Substring) -> String? {
            guard !part.isEmpty else { return nil }
            return part.contains("%") ? String(part).removingPercentEncoding : String(part)
        }
        switch parts.count {
        case 1:
            return decoded(parts[0]).map { ($0, nil) }
        case 3 where parts[1] == "versions":
            guard let model = decoded(parts[0]), let version = decoded(parts[2]) else { return nil }
            return (model, version)
        default:
            return nil
        }
    }

    /// The model a request names, ready to serve, and the memory budget's reservation for its
    /// body (`HTTPInference.reserveBody`).
    func admit(model name: String, version: String?, declaredLength: Int?) throws(ServerError) -> (LoadedModel, MemoryReservation) {
        let model = try http.core.model(name, version: version)
        try http.core.requireServing(model)
        return (model, try http.reserveBody(declared: declaredLength, for: model))
    }

    /// Answers a request whose body has been read: parses it, runs it on `model` within its
    /// deadline, and encodes the reply, or the error that stopped it. `held` is the body's
    /// reservation, which goes to the core with the request or is released on a refusal.
    func answer(
        _ request: HTTPRequest, body: Data, on model: LoadedModel, held: MemoryReservation, received: StageTimes, since started: ContinuousClock.Instant,
        on eventLoop: any EventLoop, logger: Logger, onAbandon: (@escaping @Sendable (ServerError) -> Void) -> Void
    ) async -> Answer {
        let core = http.core
        do {
            var stages = received
            let parsed: InferenceRequest
            let timeout: Duration
            do {
                let headerLength = try request.headerFields[HTTPField.Name.inferenceHeaderContentLength].map { text throws(ServerError) in
                    guard let length = Int(text) else { throw .badRequest("Inference-Header-Content-Length must be a number") }
                    return length
                }
                parsed = try stages.time(.parse) {
                    try InferRequestBody.parse(body, jsonLength: headerLength, manifest: model.manifest, maxSamples: model.maxSamplesPerRequest, memory: held)
                }
                timeout = try core.deadline(milliseconds: request.headerFields[.timeoutMilliseconds], microseconds: parsed.timeoutParameter)
            } catch {
                held.release()
                throw error
            }
            let reply = try await core.infer(parsed, on: model, held: held, within: timeout, on: eventLoop, logger: logger, onAbandon: onAbandon)
            let (fields, encoded) = try http.reply(stages.merging(reply.stages), samples: parsed.samples.count, since: started, on: model) {
                let encoded = try InferResponse(reply)
                var fields: HTTPFields = [.contentType: encoded.jsonLength == nil ? "application/json" : "application/octet-stream"]
                if let length = encoded.jsonLength { fields[HTTPField.Name.inferenceHeaderContentLength] = String(length) }
                return (fields, encoded.body)
            }
            return Answer(ok: fields, body: encoded)
        } catch {
            model.statistics.failed(seconds: (ContinuousClock.now - started).seconds)
            if let error = error as? ServerError { return Answer(error) }
            // The details are for the operator, not the client.
            logger.error("infer failed inside the server: \(error)")
            return Answer(ServerError(.internalServerError, "the request failed inside the server; its log says why"))
        }
    }
}
