import Histogram

/// Latency percentiles in milliseconds, from an HDR histogram with microsecond resolution.
public struct LatencySummary: Codable, Sendable, Equatable {
    public var count: Int
    public var mean: Double
    public var min: Double
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
}

/// Records latencies and summarises them; 3 significant digits up to an hour.
public struct LatencyRecorder {
    private var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)

    public init() {}

    public mutating func record(seconds: Double) {
        histogram.record(UInt64(max(0, (seconds * 1e6).rounded())))
    }

    public var count: Int { Int(histogram.totalCount) }

    /// Every recorded value in seconds with how often it was seen, for models that resample it.
    public var distribution: [(seconds: Double, count: Int)] {
        histogram.recordedValues().map { (Double($0.value) / 1e6, Int($0.count)) }
    }

    public var summary: LatencySummary {
        let milliseconds = { (microseconds: UInt64) in Double(microseconds) / 1000 }
        return LatencySummary(
            count: count, mean: histogram.mean / 1000, min: milliseconds(histogram.min),
            p50: milliseconds(histogram.valueAtPercentile(50)), p90: milliseconds(histogram.valueAtPercentile(90)),
            p99: milliseconds(histogram.valueAtPercentile(99)), p999: milliseconds(histogram.valueAtPercentile(99.9)),
            max: milliseconds(histogram.max))
    }
}
