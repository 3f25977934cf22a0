import Foundation
import ImagePipeline
import InferenceEngines
import ModelCatalog
import WorkerPool

/// The result for one image.
public struct Classification: Sendable {
    public var top: [ScoredClass]
    public var image: PreprocessReport
    /// Decode, preprocess and inference; queue and hand-off on a pool.
    public var stages: StageTimes
    /// From the image being handed over to its classes being known.
    public var totalSeconds: Double
}

/// Why one image could not be classified.
public enum ClassificationError: Error, CustomStringConvertible {
    case image(ImageDecodingError)
    case engine(EngineError)
    case pool(PoolError)

    public var description: String {
        switch self {
        case .image(let error): error.message
        case .engine(let error): error.message
        case .pool(let error): error.description
        }
    }

    /// A short machine-readable name for scripts.
    public var kind: String {
        switch self {
        case .image(let error): error.kind.rawValue
        case .engine(let error): error.kind.rawValue
        case .pool: "pool"
        }
    }
}

/// Decodes, preprocesses and classifies images one at a time in this process, reusing one
/// input and one output buffer so nothing is allocated per image.
public final class InProcessClassifier {
    public let entry: CatalogEntry
    public let engine: any InferenceEngine
    /// What the engine runs as, and the precision fallback that got it running, if any.
    public let engineDescription: EngineDescription
    public let spec: PreprocessSpec
    private let labels: [String]
    private let input: UnsafeMutableBufferPointer<Float>
    private let output: UnsafeMutableBufferPointer<Float>

    public init(entry: CatalogEntry, engineOptions: EngineOptions, decoder: DecoderSettings = DecoderSettings()) throws {
        let manifest = entry.manifest
        self.entry = entry
        labels = try entry.labels()
        spec = PreprocessSpec(manifest.preprocessing, decoder: decoder)
        let loaded = try loadEngine(model: EngineModel(entry: entry), options: engineOptions)
        engine = loaded.engine
        engineDescription = loaded.description
        input = .allocate(capacity: spec.tensorElementCount)
        input.initialize(repeating: 0)
        output = .allocate(capacity: manifest.output.classes)
        output.initialize(repeating: 0)
    }

    deinit {
        input.deallocate()
        output.deallocate()
    }

    /// Classifies one encoded image.
    public func classify(_ image: Data, top k: Int) throws(ClassificationError) -> Classification {
        let start = ContinuousClock.now
        let report: PreprocessReport
        do {
            report = try ModelInput.image(image).write(into: input, spec: spec)!
        } catch {
            throw .image(error)
        }
        let inferenceStart = ContinuousClock.now
        do {
            try engine.infer(batch: 1, input: input, output: output)
        } catch {
            throw .engine(error)
        }
        let end = ContinuousClock.now
        let top = topClasses(scores: UnsafeBufferPointer(output), kind: entry.manifest.output.kind, labels: labels, k: k)
        var stages = StageTimes(report)
        stages[.inference] = (end - inferenceStart).seconds
        return Classification(top: top, image: report, stages: stages, totalSeconds: (end - start).seconds)
    }
}

extension PreprocessSpec {
    /// The decoder's spec for a model's manifest.
    public init(_ preprocessing: ModelManifest.Preprocessing, decoder: DecoderSettings = DecoderSettings()) {
        self.init(
            resizeShortSide: preprocessing.resizeShortSide, cropWidth: preprocessing.crop[1], cropHeight: preprocessing.crop[0],
            mean: preprocessing.mean, std: preprocessing.std,
            channelOrder: preprocessing.channelOrder == .bgr ? .bgr : .rgb, jpeg: decoder.jpeg, maxPixels: decoder.maxPixels)
    }
}

extension EngineModel {
    /// The engine's view of a catalog model.
    public init(entry: CatalogEntry) throws(ModelCatalogError) {
        self.init(
            file: try entry.installedModelURL(), sampleShape: entry.manifest.input.shape, outputCount: entry.manifest.output.classes,
            quantized: entry.manifest.isQuantized)
    }
}
