import Classification
import Foundation
import ImagePipeline
import Logging
import ModelRegistry
import NIOCore
import Synchronization
import WorkerPool

/// The one inference path both protocols adapt: the model a request names, readiness, the
/// deadline, the memory a request holds, its samples' scores from the model's pool, the reply
/// before any wire format, and what went wrong as a `ServerError`. HTTP (`InferRoutes`,
/// `ClassifyRoute`) and gRPC (`GRPCInferenceService`) only read their wire formats into an
/// `InferenceRequest`, write the `InferenceReply` back, and map `ServerError`s to their statuses.
struct InferenceCore: Sendable {
    let registry: ModelRegistry
    let settings: RouteSettings
    let metrics: ServerMetrics

    /// The model a request names, at `version` or its highest ready one: 404 for a model or
    /// version the server does not have (or has unloaded), 503 while it loads or unloads.
    func model(_ name: String, version: String? = nil) throws(ServerError) -> LoadedModel {
        switch registry.lookup(name, version: version) {
        case .served(let model):
            return model
        case .notServing(let state, let reason):
            guard state == .unavailable else {
                var error = ServerError(.serviceUnavailable, "model \(name) is \(state.rawValue.lowercased()): \(reason)")
                error.headers[.retryAfter] = "1"
                throw error
            }
            throw ServerError(.notFound, "model \(name)\(version.flatMap { $0.isEmpty ? nil : " version \($0)" } ?? "") is not available: \(reason)")
        case .unknown:
            let served = registry.loaded.map(\.name)
            guard served.contains(name), let version else {
                throw ServerError(.notFound, "unknown model \"\(name)\"; this server serves \(served.isEmpty ? "none" : Set(served).sorted().joined(separator: ", "))")
            }
            let versions = registry.loaded.filter { $0.name == name }.map(\.version)
            throw ServerError(.notFound, "model \(name) has no version \"\(version)\"; it serves version \(versions.joined(separator: ", "))")
        }
    }

    /// The model `/v1/classify` means: the only one served, else the first one named at start.
    func defaultModel() throws(ServerError) -> LoadedModel {
        let names = Set(registry.loaded.map(\.name))
        if names.count == 1 { return try model(names.first!) }
        if case .entries(let entries) = registry.source, let first = entries.first { return try model(first.entry.manifest.name) }
        throw .badRequest("this server serves \(names.sorted().joined(separator: ", ")): name one, POST /v1/models/NAME/classify")
    }

    /// The name and version requests are counted under, from one look in the registry: the
    /// model's name once the registry knows it (an unknown name would let any client make new
    /// metric series), and the version asked for, else the one serving the model.
    func metricsLabels(_ name: String, version: String?) -> (name: String, version: String) {
        switch registry.lookup(name) {
        case .unknown: ("", version ?? "")
        case .served(let model): (name, version ?? model.version)
        case .notServing: (name, version ?? "")
        }
    }

    /// Inference waits for no warm-up: until a worker is ready, clients are told to come back.
    func requireServing(_ model: LoadedModel) throws(ServerError) {
        guard model.acceptsInference else {
            var error = ServerError(.serviceUnavailable, "model \(model.name) is not ready: \(model.readinessProblem)")
            error.headers[.retryAfter] = "1"
            throw error
        }
    }

    /// `bytes` of the memory budget for what a request for `model` carries.
    func reserve(_ bytes: Int, for purpose: String, model: LoadedModel) throws(ServerError) -> MemoryReservation {
        try settings.memory.reserve(bytes, for: purpose, model: model.name)
    }

    /// The request's deadline: `Timeout-Ms` (HTTP's header), else the protocol's `timeout`
    /// parameter (microseconds, as Triton reads it), else `--request-timeout`, which is also the
    /// most a client may ask for.
    func deadline(milliseconds header: String?, microseconds parameter: Int?) throws(ServerError) -> Duration {
        let limit = settings.requestTimeout
        if let header {
            guard let milliseconds = Int(header), milliseconds > 0 else { throw .badRequest("Timeout-Ms must be a positive number of milliseconds") }
            return min(.milliseconds(milliseconds), limit)
        }
        guard let parameter else { return limit }
        guard parameter > 0 else { throw .badRequest("the timeout parameter must be a positive number of microseconds") }
        return min(.microseconds(parameter), limit)
    }

    /// Answers `request` on `model` within `timeout`, or throws why not. `held` is the
    /// request's memory reservation, the core's from here: released when the work that uses the
    /// memory ends, not when the client stops waiting for it (a 504, a hang-up). `onAbandon` is
    /// given the function to call when the client gives up, with the error to count it under.
    func infer(
        _ request: InferenceRequest, on model: LoadedModel, held: MemoryReservation, within timeout: Duration, on eventLoop: any EventLoop,
        logger: Logger, onAbandon: (@escaping @Sendable (ServerError) -> Void) -> Void
    ) async throws(ServerError) -> InferenceReply {
        let (scores, stages) = try await scores(
            for: request.samples, on: model, held: held, within: timeout, on: eventLoop, logger: logger, onAbandon: onAbandon)
        let batch = request.samples.count, classes = model.classes
        let outputs = request.outputs.map { output in
            guard let k = output.classification else {
                return InferenceReply.Output(name: output.name, shape: [batch, classes], content: .fp32(scores), binary: output.binary)
            }
            let top = min(k, classes)
            let strings = (0..<batch).flatMap { row in model.classificationStrings(scores[(row * classes)..<((row + 1) * classes)], top: top) }
            return InferenceReply.Output(name: output.name, shape: [batch, top], content: .strings(strings), binary: output.binary)
        }
        return InferenceReply(model: model.name, version: model.version, id: request.id, outputs: outputs, stages: stages)
    }

    /// Every sample's scores, row by row, and the stages they went through; `held` as in `infer`.
    func scores(
        for samples: [ModelInput], on model: LoadedModel, held: MemoryReservation, within timeout: Duration, on eventLoop: any EventLoop,
        logger: Logger, onAbandon: (@escaping @Sendable (ServerError) -> Void) -> Void
    ) async throws(ServerError) -> (scores: [Float], stages: StageTimes) {
        do {
            try held.grow(by: model.decodingBytes(samples), for: samples.count == 1 ? "decoding the sample" : "decoding \(samples.count) samples")
        } catch {
            held.release()
            throw error
        }
        let batches = metrics.batchSizes(of: model)
        return try await run(within: timeout, holding: held, on: eventLoop, logger: logger, onAbandon: onAbandon) {
            try await model.scores(for: samples, onBatch: { batches.record($0) })
        }
    }

    /// A request answered over either protocol: its stages go to the metrics, and it counts in
    /// the model's statistics.
    func record(_ stages: StageTimes, samples: Int, seconds: Double, on model: LoadedModel) {
        metrics.stages(stages, of: model)
        let time = stages.seconds
        model.statistics.succeeded(
            samples: samples, seconds: seconds, queue: time[.queue] ?? 0,
            input: (time[.receive] ?? 0) + (time[.parse] ?? 0) + (time[.decode] ?? 0) + (time[.preprocess] ?? 0),
            inference: time[.inference] ?? 0, output: (time[.handoff] ?? 0) + (time[.respond] ?? 0))
    }
}

/// Answers with `body`'s result, or 504 once `timeout` passes, or the abandonment's error
/// (499 for the metrics) when the client gives up, whichever comes first. The late or
/// abandoned work is cancelled: still waiting for a slot, it is dropped; already decoding or on
/// a worker, it finishes there and nobody waits for it. `held` is released when the work ends,
/// whoever answered first. What the pool and the decoder throw becomes the status a client can act on.
private func run<Result: Sendable>(
    within timeout: Duration, holding held: MemoryReservation, on eventLoop: any EventLoop, logger: Logger,
    onAbandon: (@escaping @Sendable (ServerError) -> Void) -> Void, _ body: @escaping @Sendable () async throws -> Result
) async throws(ServerError) -> Result {
    // The deadline is a timer on the connection's event loop rather than a sleeping task: one
    // task per request, and a timer that is cancelled as soon as the request is answered.
    let deadline = Mutex<Scheduled<Void>?>(nil)
    defer { deadline.withLock { $0?.cancel() } }
    do {
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, Error>) in
            let answer = FirstAnswer(continuation)
            let work = Task {
                defer { held.release() }
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
