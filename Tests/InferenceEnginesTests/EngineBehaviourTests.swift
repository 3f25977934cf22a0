import Foundation
import InferenceEngines
import TestSupport
import Testing

@Suite struct EngineBehaviourTests {
    @Test("a batch gives the same scores as its samples one by one", arguments: EngineKind.allCases)
    func batching(kind: EngineKind) throws {
        let engine = try makeEngine(model: try engineModel("resnet18"), options: EngineOptions(kind: kind, threads: 1, precision: .f32))
        let inputs = try ["cat.jpg.imagenet.f32", "big_cat.jpg.imagenet.f32", "cat_exif6.jpg.imagenet.f32"].map(Fixtures.referenceTensor)
        let batched = try scores(engine, inputs: inputs)
        let single = try inputs.flatMap { try scores(engine, inputs: [$0]) }
        #expect(zip(batched, single).map { abs($0 - $1) }.max()! <= 1e-4)
    }

    @Test func openVINOReadsAndWritesCallerMemory() throws {
        let engine = try OpenVINOEngine(model: try engineModel("resnet18"), options: EngineOptions(threads: 1))
        let input = UnsafeMutableBufferPointer<Float>.allocate(capacity: engine.model.sampleInputCount)
        let output = UnsafeMutableBufferPointer<Float>.allocate(capacity: engine.model.outputCount)
        defer {
            input.deallocate()
            output.deallocate()
        }
        input.initialize(repeating: 0.5)
        output.initialize(repeating: .nan)
        try engine.infer(batch: 1, input: input, output: output)
        let bound = engine.boundBuffers(batch: 1)
        #expect(bound.input == UnsafeRawPointer(input.baseAddress!))
        #expect(bound.output == UnsafeRawPointer(output.baseAddress!))
        #expect(output.allSatisfy { $0.isFinite })
    }

    @Test func defaultPrecisionIsReported() throws {
        let engine = try OpenVINOEngine(model: try engineModel("resnet18"), options: EngineOptions(threads: 1))
        #expect(["f32", "bf16", "f16"].contains(engine.engineDescription.precision))
        #expect(engine.engineDescription.version.hasPrefix("2026.4.1"))
    }

    @Test func compiledModelsAreCached() throws {
        let cache = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: cache) }
        /// Each cache file with its size and modification time.
        func files() throws -> [String: [FileAttributeKey: Any]] {
            try Dictionary(uniqueKeysWithValues: FileManager.default.contentsOfDirectory(atPath: cache.path).map {
                ($0, try FileManager.default.attributesOfItem(atPath: cache.appendingPathComponent($0).path))
            })
        }
        _ = try OpenVINOEngine(model: try engineModel("resnet18"), options: EngineOptions(threads: 1, cacheDirectory: cache))
        let compiled = try files()
        #expect(compiled.keys.contains { $0.hasSuffix(".blob") }, "the compiled model is written to the cache: \(compiled.keys.sorted())")
        // The second load reads the blob: nothing is compiled or written again.
        _ = try OpenVINOEngine(model: try engineModel("resnet18"), options: EngineOptions(threads: 1, cacheDirectory: cache))
        let reloaded = try files()
        #expect(reloaded.keys.sorted() == compiled.keys.sorted())
        for (name, attributes) in compiled {
            #expect(reloaded[name]?[.modificationDate] as? Date == attributes[.modificationDate] as? Date, "\(name) was rewritten")
            #expect(reloaded[name]?[.size] as? Int == attributes[.size] as? Int)
        }
    }

    @Test func openCVRefusesReducedPrecision() throws {
        let error = #expect(throws: EngineError.self) {
            try OpenCVEngine(model: try engineModel("resnet18"), options: EngineOptions(kind: .opencv, precision: .bf16))
        }
        #expect(error?.kind == .unsupportedOption)
    }

    @Test("a missing or broken model file is a load error", arguments: EngineKind.allCases)
    func unreadableModel(kind: EngineKind) throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let broken = directory.appendingPathComponent("broken.onnx")
        try Data("not a model".utf8).write(to: broken)
        for file in [broken, directory.appendingPathComponent("missing.onnx")] {
            let error = #expect(throws: EngineError.self) {
                try makeEngine(model: EngineModel(file: file, sampleShape: [3, 224, 224], outputCount: 1000), options: EngineOptions(kind: kind))
            }
            #expect(error?.kind == .loadFailed)
        }
    }

    @Test func manifestThatDisagreesWithTheFileIsRefused() throws {
        var model = try engineModel("resnet18")
        model.outputCount = 10
        let error = #expect(throws: EngineError.self) { try OpenVINOEngine(model: model, options: EngineOptions(threads: 1)) }
        #expect(error?.kind == .incompatibleModel)
    }

    @Test("buffers of the wrong size are refused", arguments: EngineKind.allCases)
    func wrongBufferSize(kind: EngineKind) throws {
        let engine = try makeEngine(model: try engineModel("resnet18"), options: EngineOptions(kind: kind, threads: 1))
        var input = [Float](repeating: 0, count: 10)
        var output = [Float](repeating: 0, count: 1000)
        let error = #expect(throws: EngineError.self) {
            try input.withUnsafeMutableBufferPointer { input in
                try output.withUnsafeMutableBufferPointer { try engine.infer(batch: 1, input: input, output: $0) }
            }
        }
        #expect(error?.kind == .inferenceFailed)
    }

    @Test func signatureIsReadFromTheFile() throws {
        let signature = try ModelSignature(file: try engineModel("efficientnet-lite0").file)
        #expect(signature.inputName == "input" && signature.inputShape == [-1, 3, 224, 224])
        #expect(signature.outputName == "logits" && signature.outputShape == [-1, 1000])
    }
}
