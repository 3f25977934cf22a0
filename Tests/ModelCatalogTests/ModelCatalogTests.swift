import Foundation
import ModelCatalog
import TestSupport
import Testing

@Suite struct BundledCatalogTests {
    @Test func listsTheBundledModels() throws {
        let names = try Fixtures.catalog.entries().map(\.manifest.name)
        #expect(names == ["efficientnet-lite0", "efficientnet-lite0-int8", "resnet18", "resnet50", "resnet50-int8", "tiny"])
    }

    @Test("set-up's int8 models record how closely they agree with their f32 model", arguments: [
        ("efficientnet-lite0-int8", "efficientnet-lite0"), ("resnet50-int8", "resnet50"),
    ])
    func int8ModelsRecordTheirAccuracy(name: String, source: String) throws {
        let entry = try Fixtures.catalog.entry(named: name)
        #expect(entry.isInstalled, "run tools/setup.sh")
        #expect(entry.manifest.isQuantized)
        let quantization = try #require(entry.manifest.quantization)
        #expect(quantization.sourceModel == source)
        #expect(quantization.tool.hasPrefix("NNCF "))
        #expect(quantization.top1Agreement >= quantization.minAgreement && quantization.top1Agreement <= 1)
        #expect(quantization.top5Overlap > 0.5 && quantization.top5Overlap <= 1)
        #expect(quantization.validation.inputs >= 500 && quantization.calibration.inputs >= 100)
        #expect(quantization.calibration.photos + quantization.validation.photos <= 40, "the photos are split, not shared")
        #expect((quantization.openvino?.kernels["int8"] ?? 0) > 0)
        let f32 = try Fixtures.catalog.entry(named: source).manifest
        #expect(entry.manifest.weights == f32.weights && entry.manifest.preprocessing == f32.preprocessing)
        #expect(f32.precision == nil && f32.quantization == nil)
    }

    @Test func defaultModelHasRealWeightsAndImageNetLabels() throws {
        let entry = try Fixtures.catalog.entry(named: ModelCatalog.defaultModelName)
        #expect(entry.manifest.weights == .pretrained)
        #expect(entry.isInstalled, "run tools/setup.sh")
        let labels = try entry.labels()
        #expect(labels.count == 1000)
        #expect(labels[281] == "tabby" && labels[967] == "espresso")
        #expect(entry.manifest.preprocessing == .tensorflow)
    }

    @Test("ResNets say their weights are synthetic", arguments: ["resnet18", "resnet50"])
    func resnetsAreSynthetic(name: String) throws {
        let entry = try Fixtures.catalog.entry(named: name)
        #expect(entry.manifest.weights == .synthetic)
        #expect(entry.manifest.preprocessing == .imagenet)
    }

    @Test("unknown or unsafe names are refused with the list of models", arguments: ["mobilenet", "../Models/resnet50", "", "Resnet50"])
    func unknownModel(name: String) {
        let error = #expect(throws: ModelCatalogError.self) { try Fixtures.catalog.entry(named: name) }
        guard case .unknownModel(_, let available)? = error else {
            Issue.record("expected unknownModel, got \(String(describing: error))")
            return
        }
        #expect(available.contains("efficientnet-lite0"))
    }
}

/// A model set-up could not produce on this CPU is listed with set-up's reason, and asking for
/// it says why it is missing instead of "no model named".
@Suite struct UnavailableModelTests {
    @Test func setUpsReasonIsListedAndGivenWhenTheModelIsAskedFor() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let reason = "set-up could not produce it on this CPU (amx_tile avx2): no recipe ran int8 kernels"
        try Data("\(reason)\n".utf8).write(to: directory.appendingPathComponent("tiny-int8.unavailable"))
        try FileManager.default.copyItem(at: TestPaths.models.appendingPathComponent("tiny.json"), to: directory.appendingPathComponent("tiny.json"))
        // A record beside a manifest is stale: the model was made after all.
        try Data("old".utf8).write(to: directory.appendingPathComponent("tiny.unavailable"))
        let catalog = ModelCatalog(directory: directory)
        #expect(catalog.unavailableModels() == ["tiny-int8": reason])
        let error = #expect(throws: ModelCatalogError.self) { try catalog.entry(named: "tiny-int8") }
        #expect(error == .unavailable(name: "tiny-int8", reason: reason))
        #expect(error?.description.contains("not available on this machine: \(reason)") == true)
    }
}

@Suite struct ManifestValidationTests {
    func catalog(with manifest: String, named name: String = "broken") throws -> (ModelCatalog, URL) {
        let directory = try Fixtures.temporaryDirectory()
        try Data(manifest.utf8).write(to: directory.appendingPathComponent("\(name).json"))
        return (ModelCatalog(directory: directory), directory)
    }

    func validManifest(editing edit: (inout [String: Any]) -> Void) throws -> String {
        let data = try Data(contentsOf: TestPaths.models.appendingPathComponent("efficientnet-lite0.json"))
        var object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        object["name"] = "broken"
        edit(&object)
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    @Test("manifest problems are named", arguments: [
        ("not json", "not valid JSON"),
    ])
    func unreadableManifest(text: String, expected: String) throws {
        let (catalog, directory) = try catalog(with: text)
        defer { try? FileManager.default.removeItem(at: directory) }
        let error = #expect(throws: ModelCatalogError.self) { try catalog.entry(named: "broken") }
        #expect(error?.description.contains(expected) == true, "\(error?.description ?? "")")
    }

    @Test func missingKeyIsNamed() throws {
        let (catalog, directory) = try catalog(with: try validManifest { $0["preprocessing"] = ["crop": [224, 224]] })
        defer { try? FileManager.default.removeItem(at: directory) }
        let error = #expect(throws: ModelCatalogError.self) { try catalog.entry(named: "broken") }
        #expect(error?.description.contains("preprocessing.resize_short_side") == true, "\(error?.description ?? "")")
    }

    @Test func inconsistentShapesAreRefused() throws {
        let manifest = try validManifest {
            $0["input"] = ["name": "input", "layout": "NHWC", "shape": [224, 224, 3], "datatype": "FP32"]
        }
        let (catalog, directory) = try catalog(with: manifest)
        defer { try? FileManager.default.removeItem(at: directory) }
        let error = #expect(throws: ModelCatalogError.self) { try catalog.entry(named: "broken") }
        let text = error?.description ?? ""
        #expect(text.contains("only NCHW") && text.contains("[3, height, width]"), "\(text)")
    }

    @Test func anInt8ManifestMustRecordItsQuantization() throws {
        let (catalog, directory) = try catalog(with: try validManifest { $0["precision"] = "int8" })
        defer { try? FileManager.default.removeItem(at: directory) }
        let error = #expect(throws: ModelCatalogError.self) { try catalog.entry(named: "broken") }
        #expect(error?.description.contains("quantize.py") == true, "\(error?.description ?? "")")
    }

    @Test func missingModelFileSaysHowToMakeIt() throws {
        let (catalog, directory) = try catalog(with: try validManifest { $0["labels"] = nil })
        defer { try? FileManager.default.removeItem(at: directory) }
        let entry = try catalog.entry(named: "broken")
        #expect(!entry.isInstalled)
        #expect(try entry.labels().count == 1000)
        let error = #expect(throws: ModelCatalogError.self) { try entry.installedModelURL() }
        #expect(error?.description.contains("tools/setup.sh") == true)
    }
}

@Suite struct AddModelTests {
    let source = try! Fixtures.catalog.entry(named: "efficientnet-lite0")

    func userManifest(name: String, classes: Int = 1000) -> ModelManifest {
        var manifest = source.manifest
        manifest.name = name
        manifest.output.classes = classes
        return manifest
    }

    @Test func addCopiesTheModelAndWritesAManifest() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let catalog = ModelCatalog(directory: directory)
        let added = try catalog.add(userManifest(name: "mine"), modelFile: source.modelURL, labelsFile: source.labelsURL)
        #expect(added.isInstalled && added.modelURL.lastPathComponent == "mine.onnx")
        #expect(try catalog.entry(named: "mine").labels().count == 1000)
        #expect(try catalog.entries().map(\.manifest.name) == ["mine"])

        let again = #expect(throws: ModelCatalogError.self) {
            try catalog.add(userManifest(name: "mine"), modelFile: source.modelURL, labelsFile: nil)
        }
        #expect(again == .alreadyExists(name: "mine", manifest: directory.appendingPathComponent("mine.json").path))
        _ = try catalog.add(userManifest(name: "mine"), modelFile: source.modelURL, labelsFile: nil, replacing: true)
    }

    @Test func labelsThatDoNotMatchLeaveNothingBehind() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let catalog = ModelCatalog(directory: directory)
        let error = #expect(throws: ModelCatalogError.self) {
            try catalog.add(userManifest(name: "mine", classes: 10), modelFile: source.modelURL, labelsFile: source.labelsURL)
        }
        #expect(error == .labelsMismatch(path: source.labelsURL!.path, labels: 1000, classes: 10))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test func invalidNamesAreRefused() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let error = #expect(throws: ModelCatalogError.self) {
            try ModelCatalog(directory: directory).add(userManifest(name: "../escape"), modelFile: source.modelURL, labelsFile: nil)
        }
        #expect(error?.description.contains("name") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }
}

/// The catalog is found from where the binary is, never from where its source was.
@Suite struct CatalogLocationTests {
    @Test func anInstalledBinaryFindsTheModelsBesideItsPrefix() throws {
        let prefix = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: prefix) }
        let models = prefix.appendingPathComponent("Models"), bin = prefix.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let binary = bin.appendingPathComponent("visionpool")
        // An empty Models/ beside the binary is passed over for the one that holds manifests.
        try FileManager.default.createDirectory(at: bin.appendingPathComponent("Models"), withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: models.appendingPathComponent("tiny.json"))
        #expect(ModelCatalog.defaultDirectory(environment: [:], executable: binary).standardizedFileURL.path == models.standardizedFileURL.path)
        #expect(ModelCatalog.defaultDirectory(environment: ["VISIONPOOL_MODELS": "/srv/models"], executable: binary).path == "/srv/models")
    }

    @Test func thisTestBinaryFindsTheCheckoutsCatalogFromItsBuildFolder() {
        #expect(ModelCatalog.defaultDirectory(environment: [:]).standardizedFileURL.path == TestPaths.models.standardizedFileURL.path)
        #expect(ModelCatalog.runningExecutable.path.contains("/.build/"))
    }
}

/// A model's own folder, as KServe's storage initializer or OpenVINO Model Server lay it out.
@Suite struct ModelDirectoryTests {
    private func folder(_ files: [String: String]) throws -> URL {
        let directory = try Fixtures.temporaryDirectory()
        for (path, text) in files {
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        return directory
    }

    @Test func aBareModelAndItsLabels() throws {
        let directory = try folder(["model.onnx": "x", "labels.txt": "a\nb\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        guard case .model(let file, let labels) = try ModelDirectory(directory: directory).contents() else { Issue.record("not a bare model"); return }
        #expect(file.lastPathComponent == "model.onnx")
        #expect(labels?.lastPathComponent == "labels.txt")
    }

    @Test func theHighestNumberedVersionFolder() throws {
        let directory = try folder(["1/old.onnx": "x", "2/new.onnx": "x", "10/newest.onnx": "x"])
        defer { try? FileManager.default.removeItem(at: directory) }
        guard case .model(let file, let labels) = try ModelDirectory(directory: directory).contents() else { Issue.record("not a bare model"); return }
        #expect(file.path.hasSuffix("/10/newest.onnx"))
        #expect(labels == nil)
    }

    @Test func aManifestSaysEverything() throws {
        let bundled = try String(contentsOf: TestPaths.models.appendingPathComponent("tiny.json"), encoding: .utf8)
        let directory = try folder(["tiny.json": bundled, "tiny.onnx": "x"])
        defer { try? FileManager.default.removeItem(at: directory) }
        guard case .manifest(let entry) = try ModelDirectory(directory: directory).contents() else { Issue.record("no manifest read"); return }
        #expect(entry.manifest.name == "tiny")
        #expect(entry.modelURL.standardizedFileURL.path == directory.appendingPathComponent("tiny.onnx").standardizedFileURL.path)
    }

    @Test(arguments: [
        (["a.onnx": "x", "b.onnx": "x"], "leave one model file"),
        (["README": "x"], "holds no .onnx file"),
        (["1/README": "x"], "holds no .onnx file"),
    ])
    func whatCannotBeServedIsRefusedClearly(files: [String: String], message: String) throws {
        let directory = try folder(files)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect { try ModelDirectory(directory: directory).contents() } throws: { "\($0)".contains(message) }
    }
}
