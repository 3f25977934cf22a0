@testable import Benchmarking
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

/// The benchmark's own HTTP client against a real HTTP server on loopback TCP whose answers
/// each test chooses by path: connections are reused, capped, replaced when the server
/// closes them, and a request the server drops or never answers fails with its reason.
@Suite struct HTTPConnectionsTests {
    /// Answers by path: `/ok` 200 with the connection's number as its body, `/close` the same
    /// with `Connection: close`, `/drop` closes without answering, `/never` never answers.
    final class Responder: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let number: Int
        let path = Mutex("")
        init(number: Int) { self.number = number }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): path.withLock { $0 = head.uri }
            case .body: break
            case .end:
                let path = path.withLock { $0 }
                switch path {
                case "/drop": context.close(promise: nil)
                case "/never": break
                default:
                    let body = ByteBuffer(string: String(number))
                    var headers: HTTPHeaders = ["Content-Length": String(body.readableBytes)]
                    if path == "/close" { headers.add(name: "Connection", value: "close") }
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                    let closes = path == "/close"
                    context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in if closes { context.close(promise: nil) } }
                }
            }
        }
    }

    /// A server counting the connections it accepted.
    struct Server {
        final class Count: Sendable { let value = Atomic<Int>(0) }
        let channel: any Channel
        let accepted: Count

        static func start() async throws -> (Server, port: Int) {
            let accepted = Count()
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { [accepted] channel in
                    let number = accepted.value.add(1, ordering: .relaxed).newValue
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(Responder(number: number))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            return (Server(channel: channel, accepted: accepted), channel.localAddress!.port!)
        }
    }

    @Test func sequentialRequestsShareOneConnection() async throws {
        let (server, port) = try await Server.start()
        let client = HTTPConnections(.tcp(host: "127.0.0.1", port: port), limit: 4)
        for _ in 0..<5 {
            let response = try await client.execute(.GET, "/ok", timeout: .seconds(30))
            #expect(response.status == .ok && String(buffer: response.body) == "1" && response.keepAlive)
        }
        #expect(server.accepted.value.load(ordering: .relaxed) == 1)
        await client.shutdown()
        try await server.channel.close()
    }

    @Test func moreRequestsThanConnectionsWaitForOne() async throws {
        let (server, port) = try await Server.start()
        let client = HTTPConnections(.tcp(host: "127.0.0.1", port: port), limit: 3)
        let bodies = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<40 { group.addTask { String(buffer: try await client.execute(.GET, "/ok", timeout: .seconds(30)).body) } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(bodies.count == 40)
        #expect(server.accepted.value.load(ordering: .relaxed) <= 3, "at most the limit's connections")
        await client.shutdown()
        try await server.channel.close()
    }

    @Test func aConnectionTheServerClosesIsReplaced() async throws {
        let (server, port) = try await Server.start()
        let client = HTTPConnections(.tcp(host: "127.0.0.1", port: port), limit: 1)
        let closing = try await client.execute(.GET, "/close", timeout: .seconds(30))
        #expect(closing.status == .ok && !closing.keepAlive)
        let next = try await client.execute(.GET, "/ok", timeout: .seconds(30))
        #expect(String(buffer: next.body) == "2", "a second connection carried the next request")
        await client.shutdown()
        try await server.channel.close()
    }

    @Test func aDroppedRequestFailsAndTheNextGoesThrough() async throws {
        let (server, port) = try await Server.start()
        let client = HTTPConnections(.tcp(host: "127.0.0.1", port: port), limit: 1)
        await #expect { try await client.execute(.GET, "/drop", timeout: .seconds(30)) } throws: {
            "\($0)".contains("closed the connection before answering")
        }
        let next = try await client.execute(.GET, "/ok", timeout: .seconds(30))
        #expect(next.status == .ok && String(buffer: next.body) == "2")
        await client.shutdown()
        try await server.channel.close()
    }

    @Test func anUnansweredRequestTimesOut() async throws {
        let (server, port) = try await Server.start()
        let client = HTTPConnections(.tcp(host: "127.0.0.1", port: port), limit: 1)
        await #expect { try await client.execute(.GET, "/never", timeout: .milliseconds(200)) } throws: { "\($0)".contains("no answer within") }
        #expect(try await client.execute(.GET, "/ok", timeout: .seconds(30)).status == .ok, "the timed-out connection was replaced")
        await client.shutdown()
        try await server.channel.close()
    }

    @Test func nothingListeningIsAnError() async throws {
        let (server, port) = try await Server.start()
        try await server.channel.close()
        let client = HTTPConnections(.tcp(host: "127.0.0.1", port: port), limit: 1)
        await #expect(throws: (any Error).self) { try await client.execute(.GET, "/ok", timeout: .seconds(30)) }
        await client.shutdown()
    }

    @Test(arguments: ["https://127.0.0.1:8000", "127.0.0.1:8000", "http://"])
    func aURLTheBenchmarkCannotUseIsNamed(url: String) async throws {
        await #expect { try await HTTPTarget.connect(url: url, model: "tiny", connections: 1) } throws: {
            "\($0)".contains("is not an http://HOST[:PORT] URL")
        }
    }
}
