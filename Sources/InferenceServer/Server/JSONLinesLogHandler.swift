import Foundation
import Logging
import Synchronization

/// One JSON object per log line on standard output, as log collectors in a cluster (Fluent
/// Bit, Vector, Cloud Logging) parse without patterns: `time` (RFC 3339, UTC, milliseconds),
/// `level`, `logger`, `source` (the module), `message`, and the metadata's keys beside them. Lines are written whole
/// (one `write` each), so concurrent loggers never interleave within a line.
public struct JSONLinesLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let output: @Sendable ([UInt8]) -> Void

    /// Writes to standard output.
    public init(label: String) {
        self.init(label: label) { line in
            line.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(STDOUT_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else { return }
                    offset += written
                }
            }
        }
    }

    /// Hands each finished line, newline included, to `output`.
    init(label: String, output: @escaping @Sendable ([UInt8]) -> Void) {
        self.label = label
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var writer = JSONWriter()
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        writer.object { object in
            object.key("time")
            object.string(Date().formatted(Self.timeFormat))
            object.key("level")
            object.string(event.level.rawValue)
            object.key("logger")
            object.string(label)
            object.key("source")
            object.string(event.source)
            object.key("message")
            object.string(event.message.description)
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) where !["time", "level", "logger", "source", "message"].contains(key) {
                object.key(key)
                object.string(value.description)
            }
        }
        output(writer.bytes + [UInt8(ascii: "\n")])
    }

    private static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
}
