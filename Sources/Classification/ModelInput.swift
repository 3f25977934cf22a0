import Foundation
import ImagePipeline
import SystemSupport

#if _endian(big)
#error("ModelInput.floatBytes copies the wire's little-endian floats as they are")
#endif

/// One sample for the model, as a request or a workload carries it.
public enum ModelInput: Sendable {
    /// An encoded image (JPEG, PNG, …), decoded where it is written.
    case image(Data)
    /// A model-ready tensor for one sample: copied, not decoded.
    case tensor(ArraySlice<Float>)
    /// A model-ready tensor as the binary tensor data extension carries it: little-endian FP32
    /// bytes, unaligned, still in the request's body. Copied from there into the slot with one
    /// `memcpy`, never parsed into an array first.
    case floatBytes(Data)

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
        case .floatBytes(let bytes):
            precondition(bytes.count == tensor.count * MemoryLayout<Float>.size, "\(bytes.count) bytes for a sample of \(tensor.count) floats")
            // The wire's byte order is the machine's: Linux runs little-endian here (x86-64, AArch64).
            bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(tensor).copyMemory(from: $0) }
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
        case .image(let data), .floatBytes(let data): data.count
        }
    }
}
