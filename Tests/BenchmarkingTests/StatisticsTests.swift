import Benchmarking
import Foundation
import Testing

@Suite struct LatencyRecorderTests {
    @Test func percentilesOfAUniformDistribution() {
        var recorder = LatencyRecorder()
        for millisecond in 1...1000 { recorder.record(seconds: Double(millisecond) / 1000) }
        let summary = recorder.summary
        #expect(summary.count == 1000)
        #expect(abs(summary.p50 - 500) <= 1)
        #expect(abs(summary.p90 - 900) <= 1)
        #expect(abs(summary.p99 - 990) <= 1)
        #expect(abs(summary.p999 - 999) <= 1)
        #expect(abs(summary.mean - 500.5) <= 0.5)
        #expect(abs(summary.min - 1) <= 0.01 && abs(summary.max - 1000) <= 1)
    }

    /// Latency tails are long: the exponential's quantiles are −ln(1−q)·mean, and an HDR
    /// histogram at 3 significant digits must hold them to 0.1 %.
    @Test func percentilesOfAnExponentialDistribution() {
        let mean = 0.010
        let count = 100_000
        var recorder = LatencyRecorder()
        for index in 0..<count { recorder.record(seconds: -log(1 - (Double(index) + 0.5) / Double(count)) * mean) }
        let summary = recorder.summary
        for (quantile, value) in [(0.5, summary.p50), (0.9, summary.p90), (0.99, summary.p99), (0.999, summary.p999)] {
            let expected = -log(1 - quantile) * mean * 1000
            #expect(abs(value - expected) / expected < 0.002, "q\(quantile): \(value) ms, expected \(expected) ms")
        }
        #expect(abs(summary.mean - mean * 1000) / (mean * 1000) < 0.002)
    }

    @Test func aSingleValue() {
        var recorder = LatencyRecorder()
        recorder.record(seconds: 0.0123)
        #expect(abs(recorder.summary.p99 - 12.3) <= 0.02)
    }
}

@Suite struct PoissonArrivalsTests {
    /// Exponential gaps: mean 1/rate, standard deviation equal to the mean, and 1 − 1/e of
    /// the gaps shorter than the mean.
    @Test(arguments: [10.0, 250.0, 5000.0])
    func gapsAreExponential(rate: Double) {
        let gaps = Array(PoissonArrivals(rate: rate).prefix(200_000))
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        let deviation = (gaps.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(gaps.count)).squareRoot()
        #expect(abs(mean * rate - 1) < 0.01)
        #expect(abs(deviation / mean - 1) < 0.02)
        let shorter = Double(gaps.filter { $0 < 1 / rate }.count) / Double(gaps.count)
        #expect(abs(shorter - (1 - exp(-1))) < 0.01)
        #expect(gaps.allSatisfy { $0 > 0 && $0.isFinite })
    }

    @Test func theSameSeedOffersTheSameLoad() {
        #expect(Array(PoissonArrivals(rate: 50, seed: 3).prefix(100)) == Array(PoissonArrivals(rate: 50, seed: 3).prefix(100)))
        #expect(Array(PoissonArrivals(rate: 50, seed: 3).prefix(100)) != Array(PoissonArrivals(rate: 50, seed: 4).prefix(100)))
    }
}
