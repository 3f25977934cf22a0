import NIOCore
import Synchronization

/// Tells the requests waiting on a connection that its client hung up. Each connection gets one
/// callback on its `closeFuture`, registered by its first request: a callback per request
/// would stay on the future until the connection closes, so a keep-alive connection (a load
/// balancer's, a benchmark's) would hold one for every request it ever carried.
final class HangUps: Sendable {
    private struct State {
        var nextToken: UInt64 = 0
        /// The requests in progress on each open connection that has carried one.
        var open: [ObjectIdentifier: [UInt64: AbandonHook]] = [:]
    }

    private let state = Mutex(State())

    /// Runs `body` with an abandonment hook fired if `channel` closes before `body` returns.
    func whileConnected<Result>(
        _ channel: any Channel,
        _ body: (_ onAbandon: (@escaping @Sendable (ServerError) -> Void) -> Void) async throws(ServerError) -> Result
    ) async throws(ServerError) -> Result {
        let hook = AbandonHook()
        let connection = ObjectIdentifier(channel)
        let (token, isFirst) = state.withLock { state in
            state.nextToken += 1
            let isFirst = state.open[connection] == nil
            state.open[connection, default: [:]][state.nextToken] = hook
            return (state.nextToken, isFirst)
        }
        if isFirst {
            // Only the identifier is kept: the entry goes before the channel can be freed and its
            // identifier reused.
            channel.closeFuture.whenComplete { [weak self] _ in
                let hooks = self?.state.withLock { $0.open.removeValue(forKey: connection) } ?? [:]
                for hook in hooks.values { hook.fire(ServerError(.clientClosedRequest, "the client closed the connection")) }
            }
        }
        defer { state.withLock { _ = $0.open[connection]?.removeValue(forKey: token) } }
        return try await body { abandon in hook.set(abandon) }
    }

    /// Connections with a callback registered, for tests: one per open connection, however many requests it carried.
    var watchedConnections: Int { state.withLock { $0.open.count } }
}
