import InferenceEngines

/// One engine-only measurement: a pre-built tensor run back to back, as OpenVINO's
/// `benchmark_app -hint latency` does, so the two can be compared on the same file.
public struct EngineBenchmarkResult: Codable, Sendable {
    public var engine: EngineDescription
    public var batch: Int
    public var iterations: Int
    public var seconds: Double
    public var imagesPerSecond: Double
    /// Per batch.
    public var latency: LatencySummary
}

public enum EngineBenchmark {
    /// Runs `engine` on a deterministic tensor for `warmUp`, then measures for `duration`
    /// (or until `maxIterations`), calling `progress` with the elapsed fraction.
    public static func run(
        engine: any InferenceEngine, batch: Int, warmUp: Duration, duration: Duration, maxIterations: Int = .max,
        progress: (Double) -> Void = { _ in }
    ) throws(EngineError) -> EngineBenchmarkResult {
        let input = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * engine.model.sampleInputCount)
        let output = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * engine.model.outputCount)
        defer {
            input.deallocate()
            output.deallocate()
        }
        // A smooth pattern in the range of normalized pixels, the same on every run.
        for index in input.indices { input[index] = Float((index * 7919) % 2001) / 1000 - 1 }
        output.initialize(repeating: 0)

        let clock = ContinuousClock()
        let warmUpEnd = clock.now + warmUp
        repeat { try engine.infer(batch: batch, input: input, output: output) } while clock.now < warmUpEnd

        var recorder = LatencyRecorder()
        let start = clock.now
        let end = start + duration
        var now = start
        var lastReport = start
        while now < end && recorder.count < maxIterations {
            try engine.infer(batch: batch, input: input, output: output)
            let finished = clock.now
            recorder.record(seconds: (finished - now).seconds)
            now = finished
            if now - lastReport > .milliseconds(200) {
                progress(min(1, (now - start).seconds / duration.seconds))
                lastReport = now
            }
        }
        let elapsed = (now - start).seconds
        return EngineBenchmarkResult(
            engine: engine.engineDescription, batch: batch, iterations: recorder.count, seconds: elapsed,
            imagesPerSecond: Double(recorder.count * batch) / elapsed, latency: recorder.summary)
    }
}
