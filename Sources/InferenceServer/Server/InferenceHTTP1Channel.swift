import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// HTTP/1.1 connections as Hummingbird serves them, each with an `InferChannelHandler` right
/// after the connection-state handler, so that `infer` is answered in the pipeline and every
/// other request reaches the router.
struct InferenceHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http1: HTTP1Channel
    let infer: KServeInfer
    let accessLog: Bool

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let state = try pipeline.handler(type: HTTPConnectionStateHandler.self)
            try pipeline.addHandler(InferChannelHandler(infer: infer, logger: logger, accessLog: accessLog), position: .after(state))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}
