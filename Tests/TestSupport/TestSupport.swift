import Foundation
import ModelCatalog
import Testing

/// Where the tests find what `tools/setup.sh --prepare` produced: models, photos, fixtures
/// and the numpy reference tensors.
public enum TestPaths {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let models = root.appendingPathComponent("Models")
    public static let samples = models.appendingPathComponent("samples")
    public static let fixtures = root.appendingPathComponent("Tests/Fixtures/images")
    public static let references = root.appendingPathComponent("Tests/Fixtures/reference")
    public static let referenceManifest = root.appendingPathComponent("tools/testdata/references.json")

    /// The `visionpool` executable built beside this test binary.
    public static var executable: URL { buildFolder.appendingPathComponent("visionpool") }

    /// The `visionpool-worker` executable the pool spawns, built beside `visionpool`.
    public static var workerExecutable: URL { buildFolder.appendingPathComponent("visionpool-worker") }

    private static var buildFolder: URL {
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var folder = testBinary.deletingLastPathComponent()
        while folder.pathExtension == "xctest" || folder.lastPathComponent == "Contents" || folder.lastPathComponent == "MacOS" {
            folder.deleteLastPathComponent()
        }
        return folder
    }
}

public enum Fixtures {
    public static let catalog = ModelCatalog(directory: TestPaths.models)

    public static func image(_ name: String) throws -> Data {
        try Data(contentsOf: TestPaths.fixtures.appendingPathComponent(name))
    }

    public static func sample(_ name: String) throws -> Data {
        try Data(contentsOf: TestPaths.samples.appendingPathComponent(name))
    }

    /// A raw little-endian float32 tensor written by tools/testdata/reference_preprocess.py.
    public static func referenceTensor(_ name: String) throws -> [Float] {
        let data = try Data(contentsOf: TestPaths.references.appendingPathComponent(name))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// A fresh empty folder, removed by the caller.
    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("visionpool-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// One image of tools/testdata/references.json with the normalization it was preprocessed with.
public struct ReferenceCase: Sendable, CustomTestStringConvertible {
    public let image: String
    public let tensor: String
    public let mean: [Float]
    public let std: [Float]
    public let bgr: Bool

    public var testDescription: String { tensor }

    /// Every case in the reference manifest.
    public static let all: [ReferenceCase] = {
        struct Manifest: Decodable {
            struct Defaults: Decodable {
                let mean: [Float]
                let std: [Float]
                let bgr: Bool
            }
            struct Item: Decodable {
                let image: String
                let out: String
                let mean: [Float]?
                let std: [Float]?
                let bgr: Bool?
            }
            let defaults: Defaults
            let items: [Item]
        }
        guard let data = try? Data(contentsOf: TestPaths.referenceManifest),
              let manifest = try? JSONDecoder().decode(Manifest.self, from: data) else { return [] }
        return manifest.items.map {
            ReferenceCase(
                image: $0.image, tensor: $0.out, mean: $0.mean ?? manifest.defaults.mean, std: $0.std ?? manifest.defaults.std,
                bgr: $0.bgr ?? manifest.defaults.bgr)
        }
    }()
}

/// The index of the largest value.
public func argmax(_ values: some Collection<Float>) -> Int {
    values.enumerated().max { $0.element < $1.element }!.offset
}

/// ImageNet classes a photo of a cat may rightly get: tabby, tiger cat, Persian, Siamese, Egyptian cat.
public let catClasses = 281...285
/// ImageNet classes for a cup of coffee: coffee mug, espresso, cup.
public let coffeeClasses: Set<Int> = [504, 967, 968]
