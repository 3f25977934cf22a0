import Foundation
import Glibc
import InferenceEngines
import TestSupport
import Testing

@Suite struct OnnxRuntimeEngineTests {
    /// The five classes with the highest scores, best first.
    func top5(_ logits: [Float]) -> [Int] { Array(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(5)) }

    @Test("ONNX Runtime and OpenVINO f32 agree on real photos (same top-5, logits within 1e-3)", arguments: ["efficientnet-lite0", "resnet50"])
    func agreesWithOpenVINO(model name: String) throws {
        let model = try engineModel(name)
        let onnxruntime = try OnnxRuntimeEngine(model: model, options: EngineOptions(kind: .onnxruntime, threads: 1))
        let openvino = try OpenVINOEngine(model: model, options: EngineOptions(kind: .openvino, threads: 1, precision: .f32))
        #expect(onnxruntime.engineDescription.version == "1.31.1" && onnxruntime.engineDescription.precision == "f32")
        try expectAgreement(onnxruntime, openvino, model: name) { a, b, photo in #expect(top5(a) == top5(b), "\(photo)") }
    }

    @Test func runsOnTheCallersMemoryInPlaceAtEveryBatchSize() throws {
        let engine = try OnnxRuntimeEngine(model: try engineModel("tiny"), options: EngineOptions(kind: .onnxruntime, threads: 1))
        let sample = (0..<engine.model.sampleInputCount).map { Float($0 % 17) / 17 }
        let single = try scores(engine, inputs: [sample])
        for batch in [1, 2, 4] {
            let input = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * sample.count)
            let output = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * engine.model.outputCount)
            defer {
                input.deallocate()
                output.deallocate()
            }
            for row in 0..<batch { _ = UnsafeMutableBufferPointer(rebasing: input[row * sample.count..<(row + 1) * sample.count]).initialize(from: sample) }
            try engine.infer(batch: batch, input: input, output: output)
            let bound = engine.boundBuffers(batch: batch)
            #expect(bound.input == UnsafeRawPointer(input.baseAddress) && bound.output == UnsafeRawPointer(output.baseAddress), "batch \(batch) ran in place")
            for row in 0..<batch {
                #expect(zip(output[row * 1000..<(row + 1) * 1000], single).allSatisfy { abs($0 - $1) <= 1e-5 }, "batch \(batch) row \(row)")
            }
        }
    }

    @Test("a library that is missing or not ONNX Runtime is a clear error", arguments: [
        ("/nonexistent/libonnxruntime.so.1", "cannot load ONNX Runtime from /nonexistent/libonnxruntime.so.1"),
        ("libz.so.1", "libz.so.1 is not ONNX Runtime"),
    ])
    func aWrongLibraryIsAClearError(library: String, message: String) throws {
        let result = try visionpool(
            ["classify", "--in-process", "--engine", "onnxruntime", "--model", "tiny", TestPaths.fixtures.appendingPathComponent("cat.jpg").path],
            environment: ["VISIONPOOL_ONNXRUNTIME_LIBRARY": library])
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }
}
