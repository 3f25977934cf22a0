import Foundation
import InferenceEngines
import ModelCatalog
import TestSupport
import Testing

/// Runs `engine` on one or more samples and returns the scores.
func scores(_ engine: any InferenceEngine, inputs: [[Float]]) throws -> [Float] {
    var input = inputs.flatMap { $0 }
    var output = [Float](repeating: .nan, count: inputs.count * engine.model.outputCount)
    try input.withUnsafeMutableBufferPointer { input in
        try output.withUnsafeMutableBufferPointer { output in
            try engine.infer(batch: inputs.count, input: input, output: output)
        }
    }
    return output
}

func engineModel(_ name: String) throws -> EngineModel {
    let entry = try Fixtures.catalog.entry(named: name)
    return EngineModel(
        file: try entry.installedModelURL(), sampleShape: entry.manifest.input.shape, outputCount: entry.manifest.output.classes,
        quantized: entry.manifest.isQuantized)
}

/// Runs both engines on every photo (preprocessed as `model` expects) and expects their
/// logits within `EngineAgreementTests.logitTolerance`, then what `classes` checks.
func expectAgreement(
    _ first: any InferenceEngine, _ second: any InferenceEngine, model: String, classes: ([Float], [Float], String) -> Void
) throws {
    for photo in photos {
        let tensor = model == "resnet50" ? photo.tensor.replacingOccurrences(of: "tensorflow", with: "imagenet") : photo.tensor
        let input = try Fixtures.referenceTensor(tensor)
        let a = try scores(first, inputs: [input]), b = try scores(second, inputs: [input])
        let worst = zip(a, b).map { abs($0 - $1) }.max()!
        #expect(worst <= EngineAgreementTests.logitTolerance, "\(tensor): max |Δlogit| \(worst)")
        classes(a, b, tensor)
    }
}

/// Real photos, preprocessed by the independent reference, with the classes they must get.
let photos: [(tensor: String, expected: Set<Int>)] = [
    ("cat.jpg.tensorflow.f32", Set(catClasses)), ("coffee.jpg.tensorflow.f32", coffeeClasses),
    ("rocket.jpg.tensorflow.f32", []), ("motorcycle_portrait.png.tensorflow.f32", []),
]

@Suite struct EngineAgreementTests {
    /// Logits of magnitude ≤ ~15: the two engines' f32 arithmetic differs only in summation order.
    static let logitTolerance: Float = 1e-3

    @Test("OpenVINO f32 and OpenCV agree on real photos (top-1, logits within 1e-3)", arguments: ["efficientnet-lite0", "resnet50"])
    func enginesAgree(model name: String) throws {
        let model = try engineModel(name)
        let openvino = try OpenVINOEngine(model: model, options: EngineOptions(kind: .openvino, threads: 1, precision: .f32))
        let opencv = try OpenCVEngine(model: model, options: EngineOptions(kind: .opencv, threads: 1))
        try expectAgreement(openvino, opencv, model: name) { a, b, photo in #expect(argmax(a) == argmax(b), "\(photo)") }
    }

    @Test("EfficientNet-Lite0 classifies the photos right at f32 and at OpenVINO's default precision", arguments: [Precision.f32, .automatic])
    func photosClassifiedRight(precision: Precision) throws {
        let model = try engineModel("efficientnet-lite0")
        let engine = try OpenVINOEngine(model: model, options: EngineOptions(threads: 2, precision: precision))
        let reference = try OpenVINOEngine(model: model, options: EngineOptions(threads: 2, precision: .f32))
        for photo in photos {
            let input = try Fixtures.referenceTensor(photo.tensor)
            let logits = try scores(engine, inputs: [input])
            #expect(argmax(logits) == argmax(try scores(reference, inputs: [input])), "\(photo.tensor)")
            if photo.expected == Set(catClasses) {
                #expect(catClasses.contains(argmax(logits)))
            }
            if photo.expected == coffeeClasses {
                let top5 = logits.indices.sorted { logits[$0] > logits[$1] }.prefix(5)
                #expect(!coffeeClasses.isDisjoint(with: top5), "top-5 \(Array(top5))")
            }
        }
    }
}
