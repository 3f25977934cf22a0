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

@Suite struct QueueingModelTests {
    /// Exponentially distributed service times, as a recorder would hand them over.
    private func exponential(mean: Double, count: Int = 20_000) -> [(seconds: Double, count: Int)] {
        (0..<count).map { index in (-log(1 - (Double(index) + 0.5) / Double(count)) * mean, 1) }
    }

    /// M/M/1's response time is exponential with rate μ − λ, so its quantiles are known in
    /// closed form; the M/G/1 resampling of exponential services must reproduce them.
    @Test func resamplingExponentialServicesGivesTheMM1Quantiles() throws {
        let predictions = try #require(QueueingModel.predict(rate: 50, servers: 1, serviceTimes: exponential(mean: 0.010)))
        let general = try #require(predictions.first { $0.model == "M/G/1" })
        #expect(abs(general.utilization - 0.5) < 0.01)
        for (value, quantile) in [(general.p50, 0.5), (general.p99, 0.99)] {
            let expected = -log(1 - quantile) / (100.0 - 50) * 1000
            #expect(abs(value - expected) / expected < 0.05, "q\(quantile): \(value) ms, expected \(expected) ms")
        }
    }

    /// Deterministic service: Pollaczek–Khinchine gives M/D/1's mean wait ρD / (2(1 − ρ)); at
    /// ρ = 0.5 that is half a service, so the median response lies between D and 2D, and a
    /// lightly loaded queue answers in about one service.
    @Test func deterministicServiceBehavesAsMD1() throws {
        let loaded = try #require(QueueingModel.predict(rate: 5, servers: 1, serviceTimes: [(0.1, 1)])?.first)
        #expect(loaded.model == "M/D/1")
        #expect(loaded.p50 > 100 && loaded.p50 < 200)
        #expect(loaded.p99 > loaded.p50)
        let light = try #require(QueueingModel.predict(rate: 0.01, servers: 2, serviceTimes: [(0.1, 1)])?.first)
        #expect(abs(light.p50 - 100) < 0.01 && abs(light.p99 - 100) < 0.01)
    }

    /// One line shared by more workers waits less at the same load per worker.
    @Test(arguments: [1, 2, 4]) func poolingLowersTheTail(servers: Int) throws {
        let alone = try #require(QueueingModel.predict(rate: 7, servers: 1, serviceTimes: [(0.1, 1)])?.first)
        let pooled = try #require(QueueingModel.predict(rate: 7 * Double(servers + 1), servers: servers + 1, serviceTimes: [(0.1, 1)])?.first)
        #expect(pooled.p99 < alone.p99)
    }

    @Test func noPredictionAtOrAboveCapacityOrWithoutServiceTimes() {
        #expect(QueueingModel.predict(rate: 20, servers: 2, serviceTimes: [(0.1, 1)]) == nil)
        #expect(QueueingModel.predict(rate: 1, servers: 2, serviceTimes: []) == nil)
        #expect(QueueingModel.predict(rate: 1, servers: 0, serviceTimes: [(0.1, 1)]) == nil)
    }
}
