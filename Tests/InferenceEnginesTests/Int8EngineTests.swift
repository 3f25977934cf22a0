import Foundation
import InferenceEngines
import TestSupport
import Testing

/// The int8 models tools/setup.sh quantizes run OpenVINO's int8 kernels, and nothing else
/// pretends to run them.
@Suite struct Int8EngineTests {
    @Test("an int8 model runs int8 kernels at the default precision", arguments: ["efficientnet-lite0-int8", "resnet50-int8"])
    func int8ModelsKeepTheirQuantization(name: String) throws {
        let engine = try OpenVINOEngine(model: try engineModel(name), options: EngineOptions(threads: 1))
        let census = try engine.kernelCensus()
        #expect(census.int8 > 0, "\(census)")
        #expect(census.int8 * 2 > census.total, "most layers run int8: \(census)")
        #expect(engine.engineDescription.precision.hasPrefix("int8"))
    }

    @Test func anF32ModelRunsNoInt8Kernels() throws {
        let engine = try OpenVINOEngine(model: try engineModel("resnet18"), options: EngineOptions(threads: 1))
        let census = try engine.kernelCensus()
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

    @Test func aModelCalledInt8ThatIsNotIsRefused() throws {
        var model = try engineModel("resnet18")
        model.quantized = true
        let error = #expect(throws: EngineError.self) { try OpenVINOEngine(model: model, options: EngineOptions(threads: 1)) }
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
