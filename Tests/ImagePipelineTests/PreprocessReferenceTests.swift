import Foundation
import ImagePipeline
import TestSupport
import Testing

/// The decoder's tensors against an independent reference (Pillow + numpy, tools/testdata).
@Suite struct PreprocessReferenceTests {
    /// One grey level of 255, the most OpenCV's fixed-point bilinear resize may differ from exact
    /// arithmetic, plus float32 rounding of the normalized values.
    static let tolerance: Float = 1.001

    @Test("tensor matches the numpy reference within one grey level", arguments: ReferenceCase.all)
    func matchesReference(_ reference: ReferenceCase) throws {
        let spec = PreprocessSpec(
            resizeShortSide: 256, cropWidth: 224, cropHeight: 224, mean: reference.mean, std: reference.std,
            channelOrder: reference.bgr ? .bgr : .rgb)
        let image = try Fixtures.image(reference.image)
        var tensor = [Float](repeating: .nan, count: spec.tensorElementCount)
        _ = try image.withUnsafeBytes { bytes in
            try tensor.withUnsafeMutableBufferPointer { try ImagePreprocessor.preprocess(bytes, spec: spec, into: $0) }
        }
        let expected = try Fixtures.referenceTensor(reference.tensor)
        try #require(expected.count == tensor.count)
        let plane = 224 * 224
        var worst: Float = 0
        for index in tensor.indices {
            // Back to grey levels, so one tolerance serves every normalization.
            worst = max(worst, abs(tensor[index] - expected[index]) * reference.std[index / plane])
        }
        #expect(worst <= Self.tolerance, "largest difference \(worst) grey levels")
    }

    @Test func referenceManifestIsPresent() {
        #expect(ReferenceCase.all.count >= 20, "run tools/setup.sh --prepare to produce the fixtures")
    }
}
