import GRPCCore
import KServeGRPC

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

