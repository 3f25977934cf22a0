import GRPCCore
import KServeGRPC
import Synchronization

extension RPCError {
    /// The gRPC status that means what `error`'s HTTP status means, with the same message.
    init(_ error: ServerError) {
        let code: RPCError.Code =
            switch error.status.code {
            case 400: .invalidArgument
            case 404: .notFound
            case 413: .resourceExhausted
            case 499: .cancelled
            case 503: .unavailable
            case 504: .deadlineExceeded
            default: .internalError
            }
        self.init(code: code, message: error.message)
    }
}

extension Inference_InferParameter {
    /// The parameter as an integer, whichever integer field carried it (tritonclient sends
    /// `classification` as int64).
    var integer: Int? {
        switch parameterChoice {
        case .int64Param(let value): Int(value)
        case .uint64Param(let value): Int(exactly: value)
        default: nil
        }
    }
}

/// Where the gRPC call's cancellation (its deadline passed, or the client cancelled) reaches
/// the inference path: the path registers its abandonment once it runs, and a cancellation
/// that came first is delivered then.
final class AbandonHook: Sendable {
    private enum State {
        case waiting
        case registered(@Sendable (ServerError) -> Void)
        case fired(ServerError)
    }

    private let state = Mutex(State.waiting)

    func set(_ abandon: @escaping @Sendable (ServerError) -> Void) {
        let early: ServerError? = state.withLock { state in
            if case .fired(let error) = state { return error }
            state = .registered(abandon)
            return nil
        }
        if let early { abandon(early) }
    }

    func fire(_ error: ServerError) {
        let abandon: (@Sendable (ServerError) -> Void)? = state.withLock { state in
            defer { state = .fired(error) }
            if case .registered(let abandon) = state { return abandon }
            return nil
        }
        abandon?(error)
    }
}
