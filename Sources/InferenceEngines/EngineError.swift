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

/// Calls a C shim function that fills a message buffer on failure.
func callReportingMessage(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) -> String? {
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { buffer in
        buffer[0] = 0
        let status = body(buffer.baseAddress!, buffer.count)
        return status == 0 ? nil : String(cString: buffer.baseAddress!)
    }
}
