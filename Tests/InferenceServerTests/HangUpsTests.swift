import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import InferenceServer

/// A client's hang-up reaches the requests on its connection, and a keep-alive connection
/// holds one close callback however many requests it carries.
@Suite struct HangUpsTests {
    @Test func aConnectionKeepsOneWatchForAllItsRequests() async throws {
        let hangUps = HangUps()
        let channel = NIOAsyncTestingChannel()
        for _ in 0..<1000 {
            let answer = try await hangUps.whileConnected(channel) { onAbandon throws(ServerError) in
                onAbandon { _ in Issue.record("no request was abandoned") }
                return 42
            }
            #expect(answer == 42)
        }
        #expect(hangUps.watchedConnections == 1)
        try await channel.close()
        #expect(hangUps.watchedConnections == 0, "a closed connection's entry goes with it")
    }

    @Test func aHangUpReachesTheRequestsInProgressOnThatConnectionOnly() async throws {
        let hangUps = HangUps()
        let (closing, staying) = (NIOAsyncTestingChannel(), NIOAsyncTestingChannel())
        let heard = Heard()
        let (registered, arrival) = AsyncStream<Void>.makeStream()
        let releases = [AsyncStream<Void>.makeStream(), AsyncStream<Void>.makeStream()]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, (name, channel)) in [("closing", closing), ("staying", staying)].enumerated() {
                let release = releases[index].stream
                group.addTask {
                    try await hangUps.whileConnected(channel) { onAbandon throws(ServerError) in
                        onAbandon { error in heard.statuses.withLock { $0[name] = error.status.code } }
                        arrival.yield()
                        for await _ in release { break }
                    }
                }
            }
            var arrived = registered.makeAsyncIterator()
            _ = await arrived.next()
            _ = await arrived.next()
            try await closing.close()
            #expect(heard.statuses.withLock { $0 } == ["closing": 499])
            for release in releases { release.continuation.finish() }
            try await group.waitForAll()
        }
        #expect(hangUps.watchedConnections == 1, "the open connection's watch stays for its next request")
    }
}

/// The statuses each request's abandonment was given, by request.
private final class Heard: Sendable {
    let statuses = Mutex<[String: Int]>([:])
}
