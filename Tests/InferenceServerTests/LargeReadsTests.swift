import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import InferenceServer

/// A connection with `LargeReads` in its pipeline takes a large body in reads of more than
/// NIO's 64 KiB: over a real TCP connection, 1 MB sent at once arrives in fewer than 16 reads.
@Suite struct LargeReadsTests {
    /// Counts the bytes of each read that reaches it, and says when `total` have come.
    final class ReadSizes: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let sizes = Mutex<[Int]>([])
        let total: Int
        let done: AsyncStream<Void>.Continuation
        init(total: Int, done: AsyncStream<Void>.Continuation) {
            self.total = total
            self.done = done
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let size = unwrapInboundIn(data).readableBytes
            let sum = sizes.withLock { sizes in
                sizes.append(size)
                return sizes.reduce(0, +)
            }
            if sum >= total { done.yield() }
        }
    }

    @Test func aLargeBodyArrivesInReadsLargerThanNIOs() async throws {
        let total = 1 << 20
        let (done, signal) = AsyncStream<Void>.makeStream()
        let sizes = ReadSizes(total: total, done: signal)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandlers([LargeReads(), sizes]) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(to: server.localAddress!).get()
        try await client.writeAndFlush(ByteBuffer(repeating: 7, count: total))
        for await _ in done { break }
        try await client.close()
        try await server.close()
        let reads = sizes.sizes.withLock { $0 }
        #expect(reads.reduce(0, +) == total)
        #expect(reads.max()! > 64 << 10, "reads of \(reads)")
        #expect(reads.max()! <= LargeReads.allocator.maximum)
    }
}
