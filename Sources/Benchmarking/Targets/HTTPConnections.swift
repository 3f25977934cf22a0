import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The benchmark's HTTP/1.1 client: up to `limit` keep-alive connections to one server, one
/// request at a time on each, made of NIO's HTTP codec and one handler.
///
/// Why not a general client: the load generator shares the machine's CPUs with the server it
/// measures, so every microsecond it spends is taken from what it measures. AsyncHTTPClient
/// spent about 0.45 ms of CPU per request here on its request state machines, task hops and
/// connection pool; this spends what the codec and the socket cost. It does what a benchmark
/// needs and no more: no TLS, no redirects, no retries (a refused or broken request is counted
/// as failed, which is what a benchmark must show).
final class HTTPConnections: Sendable {
    /// Where the server listens.
    enum Address: Sendable {
        case unixSocket(path: String)
        case tcp(host: String, port: Int)
    }

    struct Response: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: ByteBuffer
        /// Whether the server leaves the connection open for another request.
        var keepAlive: Bool
    }

    private let address: Address
    private let hostHeader: String
    private let limit: Int
    private let state = NIOLockedValueBox(Pool())

    /// Connections open, idle ones ready for the next request, and requests waiting for one.
    private struct Pool {
        var idle: [Connection] = []
        var open = 0
        /// Each waits for an idle connection, or for nil: a slot to open one in.
        var waiters: [CheckedContinuation<Connection?, any Error>] = []
        var shutDown = false
    }

    init(_ address: Address, limit: Int) {
        self.address = address
        self.limit = max(1, limit)
        hostHeader = switch address {
        case .unixSocket: "localhost"
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    /// Sends one request on a free connection (opening one, or waiting for one when `limit`
    /// are busy) and returns the whole response.
    func execute(
        _ method: HTTPMethod, _ uri: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil, timeout: TimeAmount
    ) async throws -> Response {
        let connection = try await checkOut()
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: hostHeader)
        head.headers.replaceOrAdd(name: "Content-Length", value: String(body?.readableBytes ?? 0))
        do {
            let response = try await connection.send(head, body: body, timeout: timeout)
            checkIn(connection, reusable: response.keepAlive && connection.channel.isActive)
            return response
        } catch {
            checkIn(connection, reusable: false)
            throw error
        }
    }

    /// Closes every connection; requests waiting for one fail.
    func shutdown() async {
        let (idle, waiters) = state.withLockedValue { pool in
            pool.shutDown = true
            defer { pool.idle = []; pool.waiters = [] }
            return (pool.idle, pool.waiters)
        }
        for waiter in waiters { waiter.resume(throwing: HTTPTargetError("the client was shut down")) }
        for connection in idle { try? await connection.channel.close() }
    }

    private func checkOut() async throws -> Connection {
        let ready: Connection? = try await withCheckedThrowingContinuation { waiter in
            enum Decision { case use(Connection), open, wait, shutDown }
            let decision = state.withLockedValue { pool -> Decision in
                guard !pool.shutDown else { return .shutDown }
                while let connection = pool.idle.popLast() {
                    if connection.channel.isActive { return .use(connection) }
                    pool.open -= 1  // the server closed it while it was idle
                }
                guard pool.open < limit else {
                    pool.waiters.append(waiter)
                    return .wait
                }
                pool.open += 1
                return .open
            }
            switch decision {
            case .use(let connection): waiter.resume(returning: connection)
            case .open: waiter.resume(returning: nil)
            case .wait: break
            case .shutDown: waiter.resume(throwing: HTTPTargetError("the client was shut down"))
            }
        }
        if let ready { return ready }
        do {
            return try await connect()
        } catch {
            releaseSlot()
            throw error
        }
    }

    /// Hands a connection to the next waiting request, or back to the idle ones; one that
    /// cannot carry another request is closed and its slot passed on.
    private func checkIn(_ connection: Connection, reusable: Bool) {
        guard reusable else {
            connection.channel.close(promise: nil)
            releaseSlot()
            return
        }
        let waiter = state.withLockedValue { pool -> CheckedContinuation<Connection?, any Error>? in
            guard !pool.waiters.isEmpty else {
                if pool.shutDown {
                    pool.open -= 1
                    connection.channel.close(promise: nil)
                } else {
                    pool.idle.append(connection)
                }
                return nil
            }
            return pool.waiters.removeFirst()
        }
        waiter?.resume(returning: connection)
    }

    /// A connection's slot is free: a waiting request may open one in it.
    private func releaseSlot() {
        let waiter = state.withLockedValue { pool -> CheckedContinuation<Connection?, any Error>? in
            guard !pool.waiters.isEmpty else {
                pool.open -= 1
                return nil
            }
            return pool.waiters.removeFirst()
        }
        waiter?.resume(returning: nil)
    }

    private func connect() async throws -> Connection {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler())
                }
            }
        let channel = switch address {
        case .unixSocket(let path): try await bootstrap.connect(unixDomainSocketPath: path).get()
        case .tcp(let host, let port): try await bootstrap.connect(host: host, port: port).get()
        }
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ExchangeHandler.self), eventLoop: channel.eventLoop)
        }.get()
        return Connection(channel: channel, handler: handler)
    }

    /// One open connection and the handler that carries its requests.
    private struct Connection: Sendable {
        let channel: any Channel
        let handler: NIOLoopBound<ExchangeHandler>

        func send(_ head: HTTPRequestHead, body: ByteBuffer?, timeout: TimeAmount) async throws -> Response {
            let promise = channel.eventLoop.makePromise(of: Response.self)
            channel.eventLoop.execute { [handler] in handler.value.send(head, body: body, timeout: timeout, promise: promise) }
            return try await promise.futureResult.get()
        }
    }
}

/// Writes a request and gathers its response: head, body parts into one buffer, end.
private final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Never
    typealias OutboundOut = HTTPClientRequestPart

    private struct Exchange {
        let promise: EventLoopPromise<HTTPConnections.Response>
        let timeout: Scheduled<Void>
        var head: HTTPResponseHead?
        var body: ByteBuffer?
    }

    private var context: ChannelHandlerContext?
    private var exchange: Exchange?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func send(_ head: HTTPRequestHead, body: ByteBuffer?, timeout: TimeAmount, promise: EventLoopPromise<HTTPConnections.Response>) {
        guard let context, context.channel.isActive, exchange == nil else {
            promise.fail(HTTPTargetError("the connection closed before the request was sent"))
            return
        }
        let expiry = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            self?.finish(.failure(HTTPTargetError("no answer within \(Double(timeout.nanoseconds) / 1e9) s")))
            context.close(promise: nil)
        }
        exchange = Exchange(promise: promise, timeout: expiry)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body, body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            exchange?.head = head
        case .body(var part):
            if exchange?.body == nil {
                exchange?.body = part
            } else {
                exchange?.body?.writeBuffer(&part)
            }
        case .end:
            guard let head = exchange?.head else { return }
            finish(.success(HTTPConnections.Response(status: head.status, headers: head.headers, body: exchange?.body ?? ByteBuffer(), keepAlive: head.isKeepAlive)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(HTTPTargetError("the server closed the connection before answering")))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }

    private func finish(_ result: Result<HTTPConnections.Response, any Error>) {
        guard let exchange else { return }
        self.exchange = nil
        exchange.timeout.cancel()
        exchange.promise.completeWith(result)
    }
}

