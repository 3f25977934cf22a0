import Foundation
import ImagePipeline
import SystemSupport

/// One sample for the model, as a request or a workload carries it.
public enum ModelInput: Sendable {
    /// An encoded image (JPEG, PNG, …), decoded where it is written.
    case image(Data)
    /// A model-ready tensor for one sample: copied, not decoded.
    case tensor(ArraySlice<Float>)

    /// Writes the model-ready tensor straight into `tensor` (a slot's, or an engine's own
    /// buffer): decoded there, or copied. Every path that feeds an engine writes through here.
    /// Returns the decoder's report for an image, nil for a tensor.
    @discardableResult
    public func write(into tensor: UnsafeMutableBufferPointer<Float>, spec: PreprocessSpec) throws(ImageDecodingError) -> PreprocessReport? {
        switch self {
        case .tensor(let values):
            precondition(values.count == tensor.count, "a tensor of \(values.count) floats for a sample of \(tensor.count)")
            _ = values.withUnsafeBufferPointer { tensor.initialize(from: $0) }
            return nil
        case .image(let data):
            let outcome = data.withUnsafeBytes { bytes in
                Result { () throws(ImageDecodingError) in try ImagePreprocessor.preprocess(bytes, spec: spec, into: tensor) }
            }
            return try outcome.get()
        }
    }

    /// Writes the tensor into `tensor` and says how long each stage took: the decoder's own
    /// decode and preprocess times for an image; for a tensor, no decode and its copy as preprocessing.
    public func written(into tensor: UnsafeMutableBufferPointer<Float>, spec: PreprocessSpec) throws(ImageDecodingError) -> StageTimes {
        let start = ContinuousClock.now
        if let report = try write(into: tensor, spec: spec) { return StageTimes(report) }
        return StageTimes([.decode: 0, .preprocess: (ContinuousClock.now - start).seconds])
    }

    /// Bytes it holds.
    public var bytes: Int {
        switch self {
        case .tensor(let values): values.count * MemoryLayout<Float>.size
        case .image(let data): data.count
        }
    }
}
