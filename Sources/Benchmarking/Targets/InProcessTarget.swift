import Classification
import Foundation
import ImagePipeline
import InferenceEngines

/// The engine alone in this process: one request at a time (an engine runs one inference
/// at once), `batch` images per request decoded or copied into one input buffer.
public final class InProcessTarget: BenchTarget {
    public let imagesPerRequest: Int
    public let engineDescription: EngineDescription
    private let runner: Runner

    public init(engine: sending any InferenceEngine, spec: PreprocessSpec, batch: Int) {
        imagesPerRequest = batch
        engineDescription = engine.engineDescription
        runner = Runner(engine: engine, spec: spec, batch: batch)
    }

    public func send(_ items: [WorkloadItem]) async throws -> StageTimes {
        try await runner.run(items, handedOver: .now)
    }

    public func servingProcesses() -> ServingProcesses {
        ServingProcesses(front: getpid(), workers: [])
    }

    /// Serialises requests on the engine; time spent waiting for it is the queue stage.
    private actor Runner {
        let engine: any InferenceEngine
        let spec: PreprocessSpec
        let batch: Int
        let input: UnsafeMutableBufferPointer<Float>
        let output: UnsafeMutableBufferPointer<Float>

        init(engine: sending any InferenceEngine, spec: PreprocessSpec, batch: Int) {
            self.engine = engine
            self.spec = spec
            self.batch = batch
            input = .allocate(capacity: batch * engine.model.sampleInputCount)
            input.initialize(repeating: 0)
            output = .allocate(capacity: batch * engine.model.outputCount)
            output.initialize(repeating: 0)
        }

        isolated deinit {
            input.deallocate()
            output.deallocate()
        }

        func run(_ items: [WorkloadItem], handedOver: ContinuousClock.Instant) throws -> StageTimes {
            var stages = StageTimes([.queue: (ContinuousClock.now - handedOver).seconds])
            let sampleCount = engine.model.sampleInputCount
            for (index, item) in items.enumerated() {
                let sample = UnsafeMutableBufferPointer(rebasing: input[index * sampleCount..<(index + 1) * sampleCount])
                stages = stages.merging(try item.payload.written(into: sample, spec: spec))
            }
            let inferenceStart = ContinuousClock.now
            try engine.infer(batch: batch, input: input, output: output)
            stages[.inference] = (ContinuousClock.now - inferenceStart).seconds
            return stages
        }
    }
}
