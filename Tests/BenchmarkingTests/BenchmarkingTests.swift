import Benchmarking
import InferenceEngines
import ModelCatalog
import TestSupport
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

    @Test func aSingleValue() {
        var recorder = LatencyRecorder()
        recorder.record(seconds: 0.0123)
        #expect(abs(recorder.summary.p99 - 12.3) <= 0.02)
    }
}

@Suite struct EngineBenchmarkTests {
    @Test("a short run measures the real engine", arguments: [1, 2])
    func shortRun(batch: Int) throws {
        let entry = try Fixtures.catalog.entry(named: "resnet18")
        let model = EngineModel(file: try entry.installedModelURL(), sampleShape: entry.manifest.input.shape, outputCount: 1000)
        let engine = try OpenVINOEngine(model: model, options: EngineOptions(threads: 1))
        var reported: [Double] = []
        let result = try EngineBenchmark.run(
            engine: engine, batch: batch, warmUp: .milliseconds(50), duration: .milliseconds(600), progress: { reported.append($0) })
        #expect(result.iterations >= 1 && result.batch == batch)
        #expect(result.latency.count == result.iterations)
        #expect(abs(result.imagesPerSecond - Double(result.iterations * batch) / result.seconds) < 1e-6)
        #expect(result.latency.p50 > 0 && result.latency.p50 <= result.latency.max)
        #expect(reported.allSatisfy { (0...1).contains($0) })
    }

    @Test func iterationCapStopsEarly() throws {
        let entry = try Fixtures.catalog.entry(named: "resnet18")
        let model = EngineModel(file: try entry.installedModelURL(), sampleShape: entry.manifest.input.shape, outputCount: 1000)
        let engine = try OpenVINOEngine(model: model, options: EngineOptions(threads: 1))
        let result = try EngineBenchmark.run(engine: engine, batch: 1, warmUp: .zero, duration: .seconds(60), maxIterations: 3)
        #expect(result.iterations == 3)
    }
}
