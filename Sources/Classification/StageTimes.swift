import Foundation
import ImagePipeline
import SystemSupport

/// A stage of one request whose time is measured, the same on every path: the command line,
/// the server (reported in `Server-Timing`) and the benchmark's targets.
public enum Stage: String, CaseIterable, Codable, Sendable {
    /// A server reading the request's body off its connection.
    case receive
    /// A server turning the body into samples (KServe JSON, binary tensors, BYTES).
    case parse
    /// Waiting for a slot and a free worker (a batch sent to a busy worker waits in its
    /// control socket), or for the engine in this process.
    case queue
    /// Decoding the image to pixels (zero for tensors).
    case decode
    /// Resizing, cropping and normalizing into the tensor.
    case preprocess
    /// The engine's own time.
    case inference
    /// The pool's hand-back: the worker's reply reaching the front and the request being woken.
    case handoff
    /// A server encoding the response's body.
    case respond
}

/// Seconds one request spent in each stage; a stage its path cannot see is absent.
public struct StageTimes: Sendable, Equatable {
    public var seconds: [Stage: Double]

    public init(_ seconds: [Stage: Double] = [:]) {
        self.seconds = seconds
    }

    /// The decode and preprocess stages of one image's report.
    public init(_ report: PreprocessReport) {
        self.init([.decode: report.decodeSeconds, .preprocess: report.preprocessSeconds])
    }

    public subscript(stage: Stage) -> Double? {
        get { seconds[stage] }
        set { seconds[stage] = newValue }
    }

    /// Runs `body`, adding the time it takes to `stage`.
    public mutating func time<Result>(_ stage: Stage, _ body: () throws -> Result) rethrows -> Result {
        let start = ContinuousClock.now
        defer { seconds[stage, default: 0] += (ContinuousClock.now - start).seconds }
        return try body()
    }

    /// These times and `other`'s together: of two paths' stages, or one stage's parts (summed).
    public func merging(_ other: StageTimes) -> StageTimes {
        StageTimes(seconds.merging(other.seconds, uniquingKeysWith: +))
    }

    /// Per stage, the longer of the two: a request of several samples waits for its slowest.
    public func slowest(_ other: StageTimes) -> StageTimes {
        StageTimes(seconds.merging(other.seconds, uniquingKeysWith: max))
    }

    /// The W3C `Server-Timing` value, durations in milliseconds, stages in their order.
    public var serverTiming: String {
        var text = ""
        for stage in Stage.allCases {
            guard let value = seconds[stage] else { continue }
            if !text.isEmpty { text += ", " }
            text += stage.rawValue
            text += ";dur="
            text += Self.milliseconds(value)
        }
        return text
    }

    /// `seconds` in milliseconds with three decimals, as `%.3f` would write it: String(format:)
    /// goes through printf and was a tenth of what the server spends on a request outside decoding.
    static func milliseconds(_ seconds: Double) -> String {
        let microseconds = Int((max(0, seconds) * 1_000_000).rounded())
        let fraction = String(microseconds % 1000)
        return "\(microseconds / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    /// Reads a `Server-Timing` value such as `queue;dur=0.1, decode;dur=2.0`; unknown metrics are skipped.
    /// `bench` reads one per request on the CPUs it measures, so the bytes are walked in place:
    /// splitting into arrays of substrings was a tenth of `bench`'s CPU.
    public init(serverTiming: String) {
        var seconds: [Stage: Double] = [:]
        let text = serverTiming.utf8
        var start = text.startIndex
        while start < text.endIndex {
            let end = text[start...].firstIndex(of: UInt8(ascii: ",")) ?? text.endIndex
            if let (stage, milliseconds) = Self.metric(text[start..<end]) { seconds[stage] = milliseconds / 1000 }
            start = end == text.endIndex ? end : text.index(after: end)
        }
        self.init(seconds)
    }

    /// One metric, `name;param;…`: the stage it names and its `dur` parameter.
    private static func metric(_ bytes: Substring.UTF8View) -> (Stage, Double)? {
        var stage: Stage?
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: ";")) ?? bytes.endIndex
            let field = Substring(trimmingSpaces(bytes[start..<end]))
            if let named = stage {
                if field.hasPrefix("dur="), let value = Double(field.dropFirst(4)) { return (named, value) }
            } else {
                guard let named = Stage(rawValue: String(field)) else { return nil }
                stage = named
            }
            start = end == bytes.endIndex ? end : bytes.index(after: end)
        }
        return nil
    }

    private static func trimmingSpaces(_ bytes: Substring.UTF8View) -> Substring.UTF8View {
        var bytes = bytes
        while bytes.first == UInt8(ascii: " ") { bytes = bytes.dropFirst() }
        while bytes.last == UInt8(ascii: " ") { bytes = bytes.dropLast() }
        return bytes
    }

    /// Milliseconds by stage name, for JSON replies.
    public var milliseconds: [String: Double] {
        Dictionary(uniqueKeysWithValues: seconds.map { ($0.key.rawValue, $0.value * 1000) })
    }
}
