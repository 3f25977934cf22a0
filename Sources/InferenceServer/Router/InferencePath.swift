import Classification
import Foundation
import HTTPTypes
import Hummingbird
import ImagePipeline
import Logging
import NIOCore
import Synchronization
import WorkerPool

/// The one path from an HTTP request to the pool, shared by KServe `infer` and `/v1/classify`:
/// refuse at once while nothing can serve, collect the body under the memory budget, reserve
/// what decoding will hold, run every sample within the request's deadline (cancelled when
/// the client hangs up), map what the pool and the decoder throw to statuses, and time the
/// response's encoding. Stage times go to the metrics and the `Server-Timing` header here,
/// once, for both routes.
struct InferencePath<Model: ServedModel>: Sendable {
    let model: Model
    let settings: RouteSettings
    let metrics: ServerMetrics

    /// Inference waits for no warm-up: until a worker is ready, clients are told to come back.
    func requireServing() throws(ServerError) {
        guard model.acceptsInference else {
            var error = ServerError(.serviceUnavailable, "model \(model.name) is not ready: \(model.readinessProblem)")
            error.headers[.retryAfter] = "1"
            throw error
        }
    }

    /// The request's body, reserved in the memory budget, and the time reading it took; the
    /// caller releases the reservation.
    func body(of request: Request) async throws -> (Data, MemoryReservation, StageTimes) {
        let start = ContinuousClock.now
        let (body, held) = try await collect(request, limit: settings.maxBodyBytes, memory: settings.memory)
        return (body, held, StageTimes([.receive: (ContinuousClock.now - start).seconds]))
    }

    /// Every sample's scores and the request's stage times. `timeoutParameter` is the
    /// protocol's `timeout` (microseconds), when the body had one.
    func scores(
        for samples: InferRequest.Samples, request: Request, context: ConnectionContext, timeoutParameter: Int? = nil, held: MemoryReservation
    ) async throws -> (scores: [Float], stages: StageTimes) {
        let timeout = try requestTimeout(request, parameter: timeoutParameter, default: settings.requestTimeout)
        let channel = context.channel
        return try await scores(for: samples, within: timeout, held: held, on: channel.eventLoop, logger: context.logger) { abandon in
            channel.closeFuture.whenComplete { _ in abandon(ServerError(.clientClosedRequest, "the client closed the connection")) }
        }
    }

    /// Every sample's scores within `timeout`, whatever protocol asked, with what decoding
    /// will hold reserved in `held` first: `onAbandon` is given the function to call when the
    /// client gives up (hangs up, cancels), with the error to count the request under.
    func scores(
        for samples: InferRequest.Samples, within timeout: Duration, held: MemoryReservation, on eventLoop: any EventLoop, logger: Logger,
        onAbandon: (@escaping @Sendable (ServerError) -> Void) -> Void
    ) async throws -> (scores: [Float], stages: StageTimes) {
        if case .images(let images) = samples {
            try held.grow(by: model.decodingBytes(images), for: images.count == 1 ? "decoding the image" : "decoding \(images.count) images")
        }
        let (model, metrics) = (self.model, self.metrics)
        return try await run(within: timeout, on: eventLoop, logger: logger, onAbandon: onAbandon) {
            try await model.scores(for: samples, metrics: metrics)
        }
    }

    /// The 200 response `encode` builds, its encoding timed as the `respond` stage; the
    /// request's stages go to the metrics and the `Server-Timing` header.
    func response(_ stages: StageTimes, encode: () throws -> (headers: HTTPFields, body: Data)) throws -> Response {
        var stages = stages
        var (headers, body) = try stages.time(.respond) { try encode() }
        metrics.stages(stages)
        headers[.serverTiming] = stages.serverTiming
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
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
    return try timeoutParameter(microseconds: microseconds, limit: limit)
}

/// The protocol's `timeout` parameter (microseconds, as Triton reads it), capped by `limit`
/// (`--request-timeout`), over HTTP and gRPC alike; `limit` when the request has none.
func timeoutParameter(microseconds: Int?, limit: Duration) throws(ServerError) -> Duration {
    guard let microseconds else { return limit }
    guard microseconds > 0 else { throw ServerError.badRequest("the timeout parameter must be a positive number of microseconds") }
    return min(.microseconds(microseconds), limit)
}

/// Answers with `body`'s result, or 504 once `timeout` passes, or the abandonment's error
/// (499 for the metrics) when the client gives up, whichever comes first. The late or abandoned work is cancelled: still waiting for a slot, it is dropped; already on a worker, it
/// finishes there and its slot is freed, but nobody waits for it.
/// Maps what the pool and the decoder throw to the statuses a client can act on.
private func run<Result: Sendable>(
    within timeout: Duration, on eventLoop: any EventLoop, logger: Logger, onAbandon: (@escaping @Sendable (ServerError) -> Void) -> Void,
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    // The deadline is a timer on the connection's event loop rather than a sleeping task: one
    // task per request, and a timer that is cancelled as soon as the request is answered.
    let deadline = Mutex<Scheduled<Void>?>(nil)
    defer { deadline.withLock { $0?.cancel() } }
    do {
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, Error>) in
            let answer = FirstAnswer(continuation)
            let work = Task {
                do {
                    answer.resume(with: .success(try await body()))
                } catch {
                    answer.resume(with: .failure(error))
                }
            }
            let timer = eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                let message = "the request did not finish within its \(timeout) deadline"
                if answer.resume(with: .failure(ServerError(.gatewayTimeout, message))) { work.cancel() }
            }
            deadline.withLock { $0 = timer }
            // A client that gives up takes its work with it: still waiting for a slot, it leaves the line.
            onAbandon { error in
                if answer.resume(with: .failure(error)) { work.cancel() }
            }
        }
    } catch let error as ServerError {
        throw error
    } catch let error as ImageDecodingError {
        throw imageRefused(error, logger: logger)
    } catch let error as PoolError {
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
    case .overloaded, .unavailable, .stopped, .startFailed:
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

extension HTTPField.Name {
    /// The binary tensor data extension's header: the length of the JSON part of the body.
    static let inferenceHeaderContentLength = HTTPField.Name("Inference-Header-Content-Length")!
    /// Where the request's time went on the server (W3C Server Timing), for clients and `bench`.
    static let serverTiming = HTTPField.Name("Server-Timing")!
    /// A per-request deadline in milliseconds.
    static let timeoutMilliseconds = HTTPField.Name("Timeout-Ms")!
}
