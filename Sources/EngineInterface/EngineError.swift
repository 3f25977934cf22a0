/// Why an engine could not be built or could not run.
public struct EngineError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        case loadFailed = "load_failed"
        case incompatibleModel = "incompatible_model"
        case unsupportedOption = "unsupported_option"
        case inferenceFailed = "inference_failed"
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
