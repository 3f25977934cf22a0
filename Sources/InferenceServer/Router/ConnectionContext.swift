import Hummingbird
import NIOCore

/// The request context of every route: Hummingbird's basics plus the connection the request
/// came on, so that work a client no longer waits for (it hung up) can be cancelled.
public struct ConnectionContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's connection; its `closeFuture` completes when the client goes away.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
