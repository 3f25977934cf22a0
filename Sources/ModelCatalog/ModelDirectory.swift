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

    /// Reads the folder: one manifest if there is one (its files resolved in the folder),
    /// else one `.onnx` file in the folder or in its highest numbered version folder.
    public func contents() throws(ModelCatalogError) -> Contents {
        let names = try listing(directory)
        let manifests = names.filter { $0.hasSuffix(".json") }.sorted()
        if manifests.count > 1 {
            throw .modelDirectoryAmbiguous(directory: directory.path, found: manifests)
        }
        if let manifest = manifests.first {
            let entry = try CatalogEntry(manifestURL: directory.appendingPathComponent(manifest))
            _ = try entry.installedModelURL()
            return .manifest(entry)
        }
        var folder = directory, models = names.filter { $0.hasSuffix(".onnx") }
        if models.isEmpty, let version = names.compactMap(Int.init).filter({ $0 >= 0 }).max() {
            folder = directory.appendingPathComponent(String(version))
            models = try listing(folder).filter { $0.hasSuffix(".onnx") }
        }
        guard let model = models.first else { throw .modelDirectoryEmpty(directory: directory.path) }
        guard models.count == 1 else { throw .modelDirectoryAmbiguous(directory: folder.path, found: models.sorted()) }
        let labels = [folder, directory].map { $0.appendingPathComponent("labels.txt") }.first { FileManager.default.fileExists(atPath: $0.path) }
        return .model(file: folder.appendingPathComponent(model), labels: labels)
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
