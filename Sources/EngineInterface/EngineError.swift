/// Why an engine could not be built or could not run.
public struct EngineError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        case loadFailed = "load_failed"
        case incompatibleModel = "incompatible_model"
        case unsupportedOption = "unsupported_option"
        case inferenceFailed = "inference_failed"
        /// The device failed under a batch (a CUDA error): the engine cannot be trusted with
        /// another, so its worker is replaced.
        case deviceFailed = "device_failed"
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
