import COpenCVCodec

/// Why an image could not become a tensor; `message` says what to do about it.
public struct ImageDecodingError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable, Codable {
        case empty
        case unsupportedFormat = "unsupported_format"
        case truncated
        case corrupt
        case tooLarge = "too_large"
        case invalidArgument = "invalid_argument"
        case decoderFailure = "decoder_failure"
    }

    public let kind: Kind
    public let message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    init(status: vp_codec_status, message: String) {
        let kind: Kind = switch status {
        case VP_CODEC_EMPTY: .empty
        case VP_CODEC_UNSUPPORTED_FORMAT: .unsupportedFormat
        case VP_CODEC_TRUNCATED: .truncated
        case VP_CODEC_CORRUPT: .corrupt
        case VP_CODEC_TOO_LARGE: .tooLarge
        case VP_CODEC_INVALID_ARGUMENT: .invalidArgument
        default: .decoderFailure
        }
        self.init(kind: kind, message: message)
    }

    public var description: String { message }
}
