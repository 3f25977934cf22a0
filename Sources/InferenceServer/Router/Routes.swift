import Classification
import Foundation
import HTTPTypes
import Hummingbird
import ImagePipeline
import InferenceEngines
import Logging
import NIOCore
import Synchronization
import WorkerPool

/// The KServe v2 / Open Inference Protocol routes, and `/v1/classify` for curl.
public func makeRouter(
    service: ModelService, maxBodyBytes: Int, memory: MemoryBudget, defaultTimeout: Duration, metrics: ServerMetrics, accessLog: Bool
) -> Router<ConnectionContext> {
    let router = Router(context: ConnectionContext.self)
    router.add(middleware: JSONErrorsMiddleware())
    if accessLog { router.add(middleware: LogRequestsMiddleware(.info)) }
    router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
    router.get("/metrics") { _, _ in
        Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
            body: .init(byteBuffer: ByteBuffer(bytes: metrics.scrape(service.classifier.pool.status, heldBytes: memory.heldBytes))))
    }
    // Liveness fails only when the process cannot recover by itself, so that an orchestrator
    // restarts it; readiness fails whenever requests cannot be served now (warming up, every
    // worker crashed, stopping). Both answer 503 with the pool's state when they fail.
    router.get("/v2/health/live") { _, _ in
        guard service.isLive else { throw ServerError(.serviceUnavailable, "the worker pool cannot recover: \(service.classifier.pool.status.health)") }
        return HTTPResponse.Status.ok
    }
    router.get("/v2/health/ready") { _, _ in
        guard service.isReady else { throw ServerError(.serviceUnavailable, "not ready: \(service.readinessProblem)") }
        return HTTPResponse.Status.ok
    }
    router.get("/v2") { _, _ in
        try json(["name": "visionpool", "version": "0.1.0", "extensions": ["classification", "binary_tensor_data"]])
    }
    router.get("/v2/models") { _, _ in try json(["models": [service.name]]) }
    router.get("/v2/models/{model}") { _, context in
        try model(context, service)
        return try json(service.metadata)
    }
    router.get("/v2/models/{model}/versions/{version}") { _, context in
        try model(context, service, version: true)
        return try json(service.metadata)
    }
    let modelReady: @Sendable (Request, ConnectionContext) async throws -> HTTPResponse.Status = { _, context in
        try model(context, service, version: context.parameters.get("version") != nil)
        guard service.isReady else { throw ServerError(.serviceUnavailable, "model \(service.name) is not ready: \(service.readinessProblem)") }
        return .ok
    }
    router.get("/v2/models/{model}/ready", use: modelReady)
    router.get("/v2/models/{model}/versions/{version}/ready", use: modelReady)
    let infer: @Sendable (Request, ConnectionContext) async throws -> Response = { request, context in
        try model(context, service, version: context.parameters.get("version") != nil)
        try requireReady(service)
        let (body, held) = try await collect(request, limit: maxBodyBytes, memory: memory)
        defer { held.release() }
        let headerLength = try request.headers[HTTPField.Name.inferenceHeaderContentLength].map { text throws(ServerError) in
            guard let length = Int(text) else { throw .badRequest("Inference-Header-Content-Length must be a number") }
            return length
        }
        let manifest = service.entry.manifest
        let parsed = try InferRequest(
            body: body, jsonLength: headerLength, sampleShape: manifest.input.shape, inputName: manifest.input.name,
            outputName: manifest.output.name, maxSamples: service.maxSamplesPerRequest, memory: held)
        if case .images(let images) = parsed.samples {
            try held.grow(by: service.decodingBytes(images), for: "decoding \(images.count) images")
        }
        let timeout = try requestTimeout(request, parameter: parsed.timeout, default: defaultTimeout)
        let (scores, stages) = try await run(within: timeout, context: context) { try await service.scores(for: parsed.samples, metrics: metrics) }
        let reply = try InferResponse(
            model: service.name, id: parsed.id, outputs: parsed.outputs, batch: parsed.samples.count, classes: service.classes,
            scores: scores, classify: service.classificationStrings)
        var headers: HTTPFields = [
            .contentType: reply.jsonLength == nil ? "application/json" : "application/octet-stream", .serverTiming: stages.serverTiming,
        ]
        if let length = reply.jsonLength { headers[HTTPField.Name.inferenceHeaderContentLength] = String(length) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: reply.body)))
    }
    router.post("/v2/models/{model}/infer", use: infer)
    router.post("/v2/models/{model}/versions/{version}/infer", use: infer)
    router.post("/v1/classify") { request, context in
        let topText = request.uri.queryParameters.get("top") ?? "5"
        guard let top = Int(topText), (1...service.classes).contains(top) else {
            throw ServerError.badRequest("top must be a whole number from 1 to \(service.classes), not \"\(topText.prefix(40))\"")
        }
        try requireReady(service)
        let (body, held) = try await collect(request, limit: maxBodyBytes, memory: memory)
        defer { held.release() }
        try held.grow(by: service.decodingBytes([body]), for: "decoding the image")
        let timeout = try requestTimeout(request, parameter: nil, default: defaultTimeout)
        let classification = try await run(within: timeout, context: context) { try await service.classifier.classify(body, top: top) }
        metrics.stage("decode", seconds: classification.timings.decode + classification.timings.preprocess)
        metrics.stage("inference", seconds: classification.timings.inference)
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let reply = ClassifyReply(model: service.name, top: classification.top, timingsMs: classification.timings.milliseconds)
        let stages = StageSeconds(decode: classification.timings.decode + classification.timings.preprocess, inference: classification.timings.inference)
        return Response(status: .ok, headers: [.contentType: "application/json", .serverTiming: stages.serverTiming], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(reply))))
    }
    return router
}

private struct ClassifyReply: Encodable {
    let model: String
    let top: [ScoredClass]
    let timingsMs: [String: Double]
}

extension StageTimings {
    var milliseconds: [String: Double] {
        ["decode": decode * 1000, "preprocess": preprocess * 1000, "inference": inference * 1000, "total": total * 1000]
    }
}

/// Counts every inference request (the POSTs; health checks and metadata are not) by outcome,
/// times it, and keeps the in-flight gauge.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = ConnectionContext
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post else { return try await next(request, context) }
        let start = ContinuousClock.now
        metrics.began()
        defer { metrics.ended() }
        do {
            let response = try await next(request, context)
            metrics.request(status: response.status.code, seconds: (ContinuousClock.now - start).seconds)
            return response
        } catch let error as HTTPResponseError {
            metrics.request(status: error.status.code, seconds: (ContinuousClock.now - start).seconds)
            throw error
        } catch {
            metrics.request(status: 500, seconds: (ContinuousClock.now - start).seconds)
            throw error
        }
    }
}

/// Errors the framework raises itself (no such route, a method the route lacks) answer in
/// the same `{"error": …}` form as the server's own.
struct JSONErrorsMiddleware: RouterMiddleware {
    typealias Context = ConnectionContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            throw ServerError(error.status, error.body ?? "no route for \(request.method) \(request.uri.path)")
        }
    }
}

/// Checks the `{model}` (and `{version}`) path parameters name the served model.
private func model(_ context: ConnectionContext, _ service: ModelService, version: Bool = false) throws {
    let name = context.parameters.get("model") ?? ""
    guard name == service.name else { throw ServerError(.notFound, "unknown model \"\(name)\"; this server serves \"\(service.name)\"") }
    if version, context.parameters.get("version") != "1" { throw ServerError(.notFound, "model \(service.name) has only version 1") }
}

/// Inference waits for no warm-up: until a worker is ready, clients are told to come back.
/// A draining server still serves what reaches it.
private func requireReady(_ service: ModelService) throws {
    guard service.classifier.pool.canServe else {
        var error = ServerError(.serviceUnavailable, "model \(service.name) is not ready: \(service.readinessProblem)")
        error.headers[.retryAfter] = "1"
        throw error
    }
}

/// The whole body, or 413 past `limit`; reserved in `memory` before any of it is read (its
/// Content-Length, else the limit), and the reservation trimmed to the body once it is in.
/// The caller releases the reservation when the request ends.
private func collect(_ request: Request, limit: Int, memory: MemoryBudget) async throws -> (Data, MemoryReservation) {
    var request = request
    let tooLarge = ServerError(.contentTooLarge, "the request body is over the \(limit)-byte limit")
    let declared = request.headers[.contentLength].flatMap(Int.init)
    if let declared, declared > limit { throw tooLarge }
    let held = try memory.reserve(declared ?? limit, for: "the request body")
    do {
        var buffer = try await request.collectBody(upTo: limit)
        // The buffer's own storage, not a copy of it.
        let body = buffer.readData(length: buffer.readableBytes, byteTransferStrategy: .noCopy) ?? Data()
        held.shrink(to: body.count)
        return (body, held)
    } catch is NIOTooManyBytesError {
        held.release()
        throw tooLarge
    } catch {
        held.release()
        throw ServerError.badRequest("the request body could not be read: \(error)")
    }
}

/// The request's deadline: the `Timeout-Ms` header, else the protocol's `timeout` parameter
/// (microseconds, as Triton reads it), else the server's `--request-timeout`, which is also
/// the most a client may ask for.
private func requestTimeout(_ request: Request, parameter microseconds: Int?, default limit: Duration) throws -> Duration {
    if let header = request.headers[.timeoutMilliseconds] {
        guard let milliseconds = Int(header), milliseconds > 0 else { throw ServerError.badRequest("Timeout-Ms must be a positive number of milliseconds") }
        return min(.milliseconds(milliseconds), limit)
    }
    if let microseconds {
        guard microseconds > 0 else { throw ServerError.badRequest("the timeout parameter must be a positive number of microseconds") }
        return min(.microseconds(microseconds), limit)
    }
    return limit
}

/// Answers with `body`'s result, or 504 once `timeout` passes, or 499 (for the metrics) when
/// the client hangs up, whichever comes first. The late or abandoned work is cancelled: still waiting for a slot, it is dropped; already on a worker, it
/// finishes there and its slot is freed, but nobody waits for it.
/// Maps what the pool and the decoder throw to the statuses a client can act on.
private func run<Result: Sendable>(
    within timeout: Duration, context: ConnectionContext, _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let logger = context.logger
    do {
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, Error>) in
            let answer = FirstAnswer(continuation)
            // The timer ends with the request: it is cancelled as soon as the work answers.
            let timer = Task {
                try await Task.sleep(for: timeout)
                return answer.resume(with: .failure(ServerError(.gatewayTimeout, "the request did not finish within its \(timeout) deadline")))
            }
            let work = Task {
                do {
                    answer.resume(with: .success(try await body()))
                } catch {
                    answer.resume(with: .failure(error))
                }
                timer.cancel()
            }
            Task {
                if (try? await timer.value) == true { work.cancel() }
            }
            // A client that hangs up takes its work with it: still waiting for a slot, it leaves the line.
            context.channel.closeFuture.whenComplete { _ in
                if answer.resume(with: .failure(ServerError(.clientClosedRequest, "the client closed the connection"))) { work.cancel() }
                timer.cancel()
            }
        }
    } catch let error as ServerError {
        throw error
    } catch let error as ImageDecodingError {
        throw imageRefused(error, logger: logger)
    } catch ClassificationError.image(let error) {
        throw imageRefused(error, logger: logger)
    } catch let error as PoolError {
        throw unavailable(error)
    } catch ClassificationError.pool(let error) {
        throw unavailable(error)
    } catch {
        // The details are for the operator, not the client.
        logger.error("request failed inside the server: \(error)")
        throw ServerError(.internalServerError, "the request failed inside the server; its log says why")
    }
}

/// An image the client sent that cannot be used is its fault (4xx); a decoder that failed
/// on the server's side (out of memory, an internal error) is the server's (500).
private func imageRefused(_ error: ImageDecodingError, logger: Logger) -> ServerError {
    switch error.kind {
    case .tooLarge: return ServerError(.contentTooLarge, error.message)
    case .decoderFailure, .invalidArgument:
        logger.error("image decoder failed: \(error.message)")
        return ServerError(.internalServerError, "the image decoder failed on the server; its log says why")
    case .empty, .unsupportedFormat, .truncated, .corrupt: return ServerError.badRequest(error.message)
    }
}

/// 503 while the pool cannot serve (with `Retry-After` when it is only busy); 500 when the
/// work itself failed.
private func unavailable(_ error: PoolError) -> ServerError {
    switch error {
    case .overloaded:
        var reply = ServerError(.serviceUnavailable, error.description)
        reply.headers[.retryAfter] = "1"
        return reply
    case .unavailable, .stopped, .startFailed:
        var reply = ServerError(.serviceUnavailable, error.description)
        reply.headers[.retryAfter] = "1"
        return reply
    case .timedOut:
        return ServerError(.gatewayTimeout, error.description)
    case .inferenceFailed, .invalidConfiguration:
        return ServerError(.internalServerError, error.description)
    }
}

/// Resumes a continuation once: the first of several racing answers wins.
private final class FirstAnswer<Result: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Result, Error>?>

    init(_ continuation: CheckedContinuation<Result, Error>) {
        self.continuation = Mutex(continuation)
    }

    /// True when this answer was the first.
    @discardableResult
    func resume(with result: Swift.Result<Result, Error>) -> Bool {
        guard let continuation = self.continuation.withLock({ value -> CheckedContinuation<Result, Error>? in
            defer { value = nil }
            return value
        }) else { return false }
        continuation.resume(with: result)
        return true
    }
}

private func json(_ object: [String: Any]) throws -> Response {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes, .sortedKeys])
    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

extension HTTPField.Name {
    /// The binary tensor data extension's header: the length of the JSON part of the body.
    static let inferenceHeaderContentLength = HTTPField.Name("Inference-Header-Content-Length")!
    /// Where the request's time went on the server (W3C Server Timing), for clients and `bench`.
    static let serverTiming = HTTPField.Name("Server-Timing")!
    /// A per-request deadline in milliseconds.
    static let timeoutMilliseconds = HTTPField.Name("Timeout-Ms")!
}
