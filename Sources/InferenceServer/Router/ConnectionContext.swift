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

extension ConnectionContext {
    /// Checks the `{model}` (and `{version}`, when the route has one) path parameters name the served model.
    func requireModel(_ model: some ServedModel) throws(ServerError) {
        try model.check(name: parameters.get("model") ?? "", version: parameters.get("version"))
    }
}
