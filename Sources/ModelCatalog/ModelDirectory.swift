import Foundation

/// One model in a folder of its own, as an orchestrator delivers it: KServe's storage
/// initializer downloads a `storageUri` into `/mnt/models` (read-only), and OpenVINO Model
/// Server's layout puts the file in numbered version folders (`1/model.onnx`). The folder
/// holds an ONNX file, optionally a visionpool manifest (`*.json`, as in a catalog) and
/// `labels.txt`; nothing is written into it.
public struct ModelDirectory: Sendable {
    public let directory: URL

    /// What the folder holds: a manifest that says everything, or a bare ONNX file whose
    /// manifest the caller derives from the file itself.
    public enum Contents: Sendable {
        case manifest(CatalogEntry)
        case model(file: URL, labels: URL?)
    }

    public init(directory: URL) {
        self.directory = directory.standardizedFileURL
    }

    /// A model repository's serving configuration in a model's folder (Triton's `config.pbtxt`):
    /// not a manifest, though it is JSON.
    public static let configFileName = "config.json"

    /// Reads the folder: one manifest if there is one (its files resolved in the folder),
    /// else one `.onnx` file in `version`'s numbered folder, or in the folder itself or its
    /// highest numbered version folder when no version is named.
    public func contents(version: Int? = nil) throws(ModelCatalogError) -> Contents {
        let names = try listing(directory)
        let manifests = names.filter { $0.hasSuffix(".json") && $0 != Self.configFileName }.sorted()
        if manifests.count > 1 {
            throw .modelDirectoryAmbiguous(directory: directory.path, found: manifests)
        }
        if version == nil, let manifest = manifests.first {
            let entry = try CatalogEntry(manifestURL: directory.appendingPathComponent(manifest))
            _ = try entry.installedModelURL()
            return .manifest(entry)
        }
        var folder = directory, models = version == nil ? names.filter { $0.hasSuffix(".onnx") } : []
        if models.isEmpty, let version = version ?? versions(in: names).max() {
            folder = directory.appendingPathComponent(String(version))
            models = try listing(folder).filter { $0.hasSuffix(".onnx") }
        }
        guard let model = models.first else { throw .modelDirectoryEmpty(directory: folder.path) }
        guard models.count == 1 else { throw .modelDirectoryAmbiguous(directory: folder.path, found: models.sorted()) }
        let labels = [folder, directory].map { $0.appendingPathComponent("labels.txt") }.first { FileManager.default.fileExists(atPath: $0.path) }
        return .model(file: folder.appendingPathComponent(model), labels: labels)
    }

    /// The numbered version folders (`1/`, `2/`, …), lowest first; empty when the model file
    /// lies in the folder itself.
    public func versions() throws(ModelCatalogError) -> [Int] {
        versions(in: try listing(directory)).sorted()
    }

    /// The manifest in the folder, if it has one (`*.json` other than the configuration).
    public func manifestEntry() throws(ModelCatalogError) -> CatalogEntry? {
        let manifests = try listing(directory).filter { $0.hasSuffix(".json") && $0 != Self.configFileName }.sorted()
        guard manifests.count <= 1 else { throw .modelDirectoryAmbiguous(directory: directory.path, found: manifests) }
        return try manifests.first.map { name throws(ModelCatalogError) in try CatalogEntry(manifestURL: directory.appendingPathComponent(name)) }
    }

    private func versions(in names: [String]) -> [Int] {
        names.compactMap(Int.init).filter { $0 >= 1 && (try? listing(directory.appendingPathComponent(String($0))))?.contains { $0.hasSuffix(".onnx") } == true }
    }

    /// An entry for `manifest` describing files in this folder (its paths relative to it).
    public func entry(for manifest: ModelManifest) throws(ModelCatalogError) -> CatalogEntry {
        let problems = manifest.problems
        guard problems.isEmpty else { throw .invalidManifest(path: directory.path, problems: problems) }
        return CatalogEntry(manifest: manifest, manifestURL: directory.appendingPathComponent("\(manifest.name).json"))
    }

    private func listing(_ folder: URL) throws(ModelCatalogError) -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: folder.path)
        } catch {
            throw .modelDirectoryUnreadable(directory: folder.path, reason: error.localizedDescription)
        }
    }
}
