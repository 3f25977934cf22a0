import Classification
import Foundation
import HTTPTypes
import Logging
import ModelRegistry
import NIOCore
import NIOHTTPTypes

/// Answers KServe `infer` inside the connection's channel pipeline; every other request goes
/// on to the router.
///
/// Why not a route: the router reads a body through an async stream and writes the response
/// through an async writer, with task switches between them and the connection's event loop.
/// Here the body is gathered as the event loop reads it, one task runs the request, and its
/// answer is written from the event loop in one flush: of the front's CPU for a JPEG request,
/// what is not decoding fell from 32 % to 26 % (`perf`, docs/PERFORMANCE.md).
///
/// Sits after Hummingbird's connection-state handler, which therefore sees every request and
/// response: the idle timeout and a graceful stop's "close once the response is out" hold for
/// these requests too. Responses leave in the order the requests came: a request that arrives
/// (pipelined) while an earlier one is unanswered waits, with reading paused, until it is.
final class InferChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let infer: KServeInfer
    private let logger: Logger
    private let accessLog: Bool

    /// The `infer` request in progress on this connection, if any.
    private var exchange: Exchange?
    /// Requests passed on to the router whose response has not been written yet.
    private var routed = 0
    /// Whether the parts read now belong to a request passed on to the router.
    private var passingOn = false
    /// Parts of requests that must wait for the answers before theirs, in order.
    private var waiting: [HTTPRequestPart] = []
    /// A read the pipeline asked for while requests wait: done once they are taken.
    private var readPending = false

    private enum Exchange {
        /// The body of an admitted request, arriving.
        case reading(Reading)
        /// A refused request's body, dropped as it arrives; the refusal is the answer at its end.
        case refusing(ServerError, ServerMetrics.RequestTally, close: Bool)
        /// The request is running; `hook` tells it if the client hangs up.
        case answering(hook: AbandonHook, tally: ServerMetrics.RequestTally, close: Bool)
    }

    private struct Reading {
        let request: HTTPRequest
        let model: LoadedModel
        let held: MemoryReservation
        let tally: ServerMetrics.RequestTally
        let started: ContinuousClock.Instant
        /// The client asked for the connection to close after the answer.
        let close: Bool
        var body: ByteBuffer
    }

    init(infer: KServeInfer, logger: Logger, accessLog: Bool) {
        self.infer = infer
        self.logger = logger
        self.accessLog = accessLog
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        take(unwrapInboundIn(data), context: context)
    }

    private func take(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        guard waiting.isEmpty else {
            waiting.append(part)
            return
        }
        switch part {
        case .head(let request):
            let target = request.method == .post ? request.path.flatMap(KServeInfer.target(of:)) : nil
            // A request waits while an earlier one is unanswered, except a routed one behind
            // routed ones: the router answers those in order itself.
            guard exchange == nil, target == nil || routed == 0 else {
                waiting.append(part)
                return
            }
            guard let target else {
                routed += 1
                passingOn = true
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            begin(request, target: target)
        case .body(var bytes):
            guard !passingOn else { return context.fireChannelRead(wrapInboundOut(part)) }
            guard case .reading(var reading) = exchange else { return }
            guard reading.body.readableBytes + bytes.readableBytes <= infer.http.core.settings.maxBodyBytes else {
                reading.held.release()
                exchange = .refusing(infer.http.bodyTooLarge, reading.tally, close: reading.close)
                return
            }
            exchange = nil  // the buffer is appended to without a copy while no one else holds it
            reading.body.writeBuffer(&bytes)
            exchange = .reading(reading)
        case .end:
            guard !passingOn else {
                passingOn = false
                return context.fireChannelRead(wrapInboundOut(part))
            }
            switch exchange {
            case .reading(let reading): run(reading, context: context)
            case .refusing(let error, let tally, let close): respond(KServeInfer.Answer(error), tally: tally, close: close, context: context)
            case .answering, nil: break
            }
        }
    }

    /// Admits an `infer` request at its head: the model must be served and ready, and its body
    /// fit the memory budget; otherwise the refusal is answered once the body has gone by.
    private func begin(_ request: HTTPRequest, target: (model: String, version: String?)) {
        if accessLog {
            logger.info("Request", metadata: ["hb.request.path": .string(request.path ?? ""), "hb.request.method": .string(request.method.rawValue)])
        }
        let core = infer.http.core
        let labels = core.metricsLabels(target.model, version: target.version)
        let tally = core.metrics.begin(.http, model: labels.name, version: labels.version)
        let close = request.headerFields[.connection] == "close"
        do {
            let declared = try request.headerFields[.contentLength].map { text throws(ServerError) in
                guard let length = Int(text), length >= 0 else { throw .badRequest("Content-Length must be a number") }
                return length
            }
            let (model, held) = try infer.admit(model: target.model, version: target.version, declaredLength: declared)
            var body = ByteBuffer()
            body.reserveCapacity(declared ?? 0)
            exchange = .reading(Reading(request: request, model: model, held: held, tally: tally, started: .now, close: close, body: body))
        } catch {
            exchange = .refusing(error, tally, close: close)
        }
    }

    /// Runs a request whose body is in, on a task of its own, and writes its answer from the
    /// connection's event loop.
    private func run(_ reading: Reading, context: ChannelHandlerContext) {
        reading.held.shrink(to: reading.body.readableBytes)
        let received = StageTimes([.receive: (ContinuousClock.now - reading.started).seconds])
        let hook = AbandonHook()
        exchange = .answering(hook: hook, tally: reading.tally, close: reading.close)
        var buffer = reading.body
        // The buffer's own storage, not a copy of it.
        let body = buffer.readData(length: buffer.readableBytes, byteTransferStrategy: .noCopy) ?? Data()
        let (infer, logger, eventLoop) = (self.infer, self.logger, context.eventLoop)
        let (request, model, held, tally, started, close) = (reading.request, reading.model, reading.held, reading.tally, reading.started, reading.close)
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: eventLoop)
        Task {
            let answer = await infer.answer(
                request, body: body, on: model, held: held, received: received, since: started, on: eventLoop, logger: logger, onAbandon: hook.set)
            eventLoop.execute {
                let (handler, context) = bound.value
                handler.respond(answer, tally: tally, close: close, context: context)
            }
        }
    }

    /// Writes an answer in one flush, counts it, and takes the requests that waited for it.
    private func respond(_ answer: KServeInfer.Answer, tally: ServerMetrics.RequestTally, close: Bool, context: ChannelHandlerContext) {
        exchange = nil
        tally.end(status: answer.status.code)
        guard context.channel.isActive else { return }
        var fields = answer.fields
        fields[.contentLength] = String(answer.body.count)
        fields[.date] = HTTPDate.now
        fields[.server] = "visionpool"
        if close { fields[.connection] = "close" }
        context.write(wrapOutboundOut(.head(HTTPResponse(status: answer.status, headerFields: fields))), promise: nil)
        if !answer.body.isEmpty {
            context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: answer.body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        if close {
            context.close(promise: nil)
            return
        }
        takeWaiting(context: context)
    }

    /// Takes the parts that waited, in order, until one must wait again; reading goes on once none wait.
    private func takeWaiting(context: ChannelHandlerContext) {
        guard !waiting.isEmpty else { return }
        let parts = waiting
        waiting = []
        for part in parts { take(part, context: context) }
        // The router's stream hands on what it was given at the end of a read; these parts came after theirs.
        context.fireChannelReadComplete()
        if waiting.isEmpty, readPending {
            readPending = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        // Requests waiting are enough to hold: no more is read until they are taken.
        guard waiting.isEmpty else {
            readPending = true
            return
        }
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        // A response the router writes on its own (a malformed request's 400) ends no routed request.
        if case .end = unwrapOutboundIn(data), routed > 0 {
            routed -= 1
            if routed == 0 { takeWaiting(context: context) }
        }
    }

    /// The connection closed (Hummingbird's state handler passes no `channelInactive` on, so
    /// this is where it shows): a body being read gives its reservation back, and a request
    /// running is abandoned, answered with the hang-up's error and counted so.
    func handlerRemoved(context: ChannelHandlerContext) {
        let hungUp = HTTPResponse.Status.clientClosedRequest
        switch exchange {
        case .reading(let reading):
            reading.held.release()
            reading.tally.end(status: hungUp.code)
        case .refusing(_, let tally, _):
            tally.end(status: hungUp.code)
        case .answering(let hook, _, _):
            hook.fire(ServerError(hungUp, "the client closed the connection"))
            return
        case nil:
            return
        }
        exchange = nil
    }
}
