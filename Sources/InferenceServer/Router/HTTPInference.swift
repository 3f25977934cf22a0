import Classification
import Foundation
import HTTPTypes
import Hummingbird
import ModelRegistry
import NIOCore

/// What HTTP adds to the inference core for its requests (KServe `infer` and `/v1/classify`):
/// the body read under the memory budget, `Timeout-Ms`, the connection's hang-up as the
/// client giving up, and the 200 with its `Server-Timing` header.
struct HTTPInference: Sendable {
    let core: InferenceCore
    let hangUps = HangUps()

    /// The model the route's `{model}` and `{version}` name.
    func model(_ context: ConnectionContext) throws(ServerError) -> LoadedModel {
        try core.model(context.parameters.get("model") ?? "", version: context.parameters.get("version"))
    }

    /// Counts one request of the model the route names, or of `model` for a route that names
    /// none (see `ServerMetrics.counting`).
    func counting(_ context: ConnectionContext, model: LoadedModel? = nil, _ body: () async throws -> Response) async throws -> Response {
        let (name, version) = model.map { ($0.name, $0.version) }
            ?? core.metricsLabels(context.parameters.get("model") ?? "", version: context.parameters.get("version"))
        return try await core.metrics.counting(.http, model: name, version: version, status: { $0.status.code }, body)
    }

    /// The request's body for `model`, reserved in the memory budget (its Content-Length, else
    /// the limit, before any of it is read; trimmed to the body once it is in), and the time
    /// reading it took. The reservation goes to the core with the request, or is released on a refusal.
    func body(of request: Request, for model: LoadedModel) async throws -> (Data, MemoryReservation, StageTimes) {
        let start = ContinuousClock.now
        var request = request
        let declared = request.headers[.contentLength].flatMap(Int.init)
        let held = try reserveBody(declared: declared, for: model)
        do {
            // One allocation of the declared size, each part copied into it once; collecting
            // into the first part instead copied its read buffer, then the body again at each doubling.
            var buffer = ByteBuffer()
            buffer.reserveCapacity(declared ?? 0)
            try await request.body.collect(upTo: core.settings.maxBodyBytes, into: &buffer)
            // The buffer's own storage, not a copy of it.
            let body = buffer.readData(length: buffer.readableBytes, byteTransferStrategy: .noCopy) ?? Data()
            held.shrink(to: body.count)
            return (body, held, StageTimes([.receive: (ContinuousClock.now - start).seconds]))
        } catch is NIOTooManyBytesError {
            held.release()
            throw bodyTooLarge
        } catch {
            held.release()
            throw ServerError.badRequest("the request body could not be read: \(error)")
        }
    }

    /// A body of `declared` bytes (its Content-Length; nil: not declared) for `model`, reserved in
    /// the memory budget before any of it is read: the declared size, else the body limit. 413
    /// for a declared size over the limit.
    func reserveBody(declared: Int?, for model: LoadedModel) throws(ServerError) -> MemoryReservation {
        let limit = core.settings.maxBodyBytes
        if let declared, declared > limit { throw bodyTooLarge }
        return try core.reserve(declared ?? limit, for: "the request body", model: model)
    }

    /// The refusal of a body over `--max-body-bytes`.
    var bodyTooLarge: ServerError {
        ServerError(.contentTooLarge, "the request body is over the \(core.settings.maxBodyBytes)-byte limit")
    }

    /// The request's deadline: its `Timeout-Ms` header, else `--request-timeout`.
    func deadline(_ request: Request) throws(ServerError) -> Duration {
        try core.deadline(milliseconds: request.headers[.timeoutMilliseconds], microseconds: nil)
    }

    /// Runs `body` with an abandonment hook fired when the client closes the connection.
    func whileConnected<Result>(
        _ context: ConnectionContext,
        _ body: (_ onAbandon: (@escaping @Sendable (ServerError) -> Void) -> Void) async throws(ServerError) -> Result
    ) async throws(ServerError) -> Result {
        try await hangUps.whileConnected(context.channel, body)
    }

    /// The 200 response `encode` builds, its encoding timed as the `respond` stage; the
    /// request's stages go to the metrics, the model's statistics and the `Server-Timing` header.
    func response(
        _ stages: StageTimes, samples: Int, since started: ContinuousClock.Instant, on model: LoadedModel,
        encode: () throws -> (headers: HTTPFields, body: Data)
    ) throws -> Response {
        let (headers, body) = try reply(stages, samples: samples, since: started, on: model, encode: encode)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// The 200 reply's header fields and body, as `response` describes, for a path that writes
    /// them itself.
    func reply(
        _ stages: StageTimes, samples: Int, since started: ContinuousClock.Instant, on model: LoadedModel,
        encode: () throws -> (headers: HTTPFields, body: Data)
    ) throws -> (headers: HTTPFields, body: Data) {
        var stages = stages
        var (headers, body) = try stages.time(.respond) { try encode() }
        core.record(stages, samples: samples, seconds: (ContinuousClock.now - started).seconds, on: model)
        headers[.serverTiming] = stages.serverTiming
        return (headers, body)
    }
}

extension HTTPField.Name {
    /// The binary tensor data extension's header: the length of the JSON part of the body.
    static let inferenceHeaderContentLength = HTTPField.Name("Inference-Header-Content-Length")!
    /// Where the request's time went on the server (W3C Server Timing), for clients and `bench`.
    static let serverTiming = HTTPField.Name("Server-Timing")!
    /// A per-request deadline in milliseconds.
    static let timeoutMilliseconds = HTTPField.Name("Timeout-Ms")!
}
