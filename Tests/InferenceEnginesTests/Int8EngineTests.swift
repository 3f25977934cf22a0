import Foundation
import InferenceEngines
import TestSupport
import Testing

/// The int8 models tools/setup.sh quantizes run int8 kernels on OpenVINO and ONNX Runtime,
/// and nothing else pretends to run them.
@Suite struct Int8EngineTests {
    /// The engine's own census of the kernels a model ran: OpenVINO's performance counters,
    /// ONNX Runtime's profile of the run it makes at load.
    func census(_ name: String, on kind: EngineKind, quantized: Bool? = nil) throws -> (KernelCensus, EngineDescription) {
        var model = try engineModel(name)
        if let quantized { model.quantized = quantized }
        switch kind {
        case .openvino:
            let engine = try OpenVINOEngine(model: model, options: EngineOptions(threads: 1))
            return (try #require(try engine.kernelCensus()), engine.engineDescription)
        default:
            let engine = try OnnxRuntimeEngine(model: model, options: EngineOptions(kind: .onnxruntime, threads: 1))
            return (try #require(try engine.kernelCensus()), engine.engineDescription)
        }
    }

    /// OpenVINO runs most convolutions of both models int8. ONNX Runtime fuses a QDQ
    /// convolution into QLinearConv only where its pattern allows: 53 of ResNet-50's 54
    /// layers, but only 12 of EfficientNet-Lite0's 50, whose ReLU6 (Clip) blocks stay float.
    @Test("an int8 model runs int8 kernels at the default precision", arguments: [
        (EngineKind.openvino, "efficientnet-lite0-int8", true), (.openvino, "resnet50-int8", true),
        (.onnxruntime, "efficientnet-lite0-int8", false), (.onnxruntime, "resnet50-int8", true),
    ])
    func int8ModelsKeepTheirQuantization(engine: EngineKind, name: String, mostInt8: Bool) throws {
        let (census, description) = try census(name, on: engine)
        #expect(census.int8 > 0, "\(census)")
        if mostInt8 { #expect(census.int8 * 2 > census.total, "most layers run int8: \(census)") }
        #expect(description.precision.hasPrefix("int8"))
    }

    @Test func anF32ModelRunsNoInt8Kernels() throws {
        let (census, _) = try census("resnet18", on: .openvino)
        #expect(census.int8 == 0 && census.total > 0, "\(census)")
    }

    @Test func theInt8ModelStillSeesACatAndCoffee() throws {
        let int8 = try makeEngine(model: try engineModel("efficientnet-lite0-int8"), options: EngineOptions(threads: 1))
        for (tensor, expected) in photos where !expected.isEmpty {
            let scores = try scores(int8, inputs: [try Fixtures.referenceTensor(tensor)])
            let top = scores.indices.max { scores[$0] < scores[$1] }!
            #expect(expected.contains(top), "\(tensor): class \(top)")
        }
    }

    @Test("a model called int8 that runs no int8 kernel is refused", arguments: [EngineKind.openvino, .onnxruntime])
    func aModelCalledInt8ThatIsNotIsRefused(engine: EngineKind) throws {
        let error = #expect(throws: EngineError.self) { try census("resnet18", on: engine, quantized: true) }
        #expect(error?.kind == .incompatibleModel)
        #expect(error?.message.contains("no int8 kernels") == true, "\(error?.message ?? "")")
    }

    @Test func openCVRefusesInt8ModelsByName() throws {
        let error = #expect(throws: EngineError.self) {
            try OpenCVEngine(model: try engineModel("resnet50-int8"), options: EngineOptions(kind: .opencv, threads: 1))
        }
        #expect(error?.message.contains("resnet50-int8.onnx") == true && error?.message.contains("--engine openvino") == true)
    }
}
