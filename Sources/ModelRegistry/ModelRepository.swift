import Foundation
import InferenceEngines
import ModelCatalog

/// Why a model folder or repository cannot be served as it is.
public enum ModelRepositoryError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidConfig(path: String, problems: [String])
    case invalidName(folder: String, name: String)
    case notAClassifier(path: String, reason: String)
    case unreadable(path: String, reason: String)
    case noSuchModel(name: String, repository: String, available: [String])
    case noVersionChosen(name: String, policy: String, available: [Int])
    case catalog(ModelCatalogError)

    public var description: String {
        switch self {
        case .invalidConfig(let path, let problems): "invalid model configuration \(path): \(problems.joined(separator: "; "))"
        case .invalidName(let folder, let name):
            "cannot serve \(folder) as \"\(name)\": model names are 1–64 lower-case letters, digits, '.', '_' and '-'"
        case .notAClassifier(let path, let reason): "\(path): \(reason)"
        case .unreadable(let path, let reason): "cannot read the model repository \(path): \(reason)"
        case .noSuchModel(let name, let repository, let available):
            "no model \(name) in \(repository)" + (available.isEmpty ? " (it holds no model folders)" : " (it holds \(available.joined(separator: ", ")))")
        case .noVersionChosen(let name, let policy, let available):
            "the version policy of \(name) (\(policy)) chooses none of its versions (\(available.map(String.init).joined(separator: ", ")))"
        case .catalog(let error): error.description
        }
    }
}

/// A model as a server serves it: its catalog entry and the version clients name.
public struct ServedEntry: Sendable {
    public let entry: CatalogEntry
    public let version: String

    public init(entry: CatalogEntry, version: String) {
        self.entry = entry
        self.version = version
    }
}

extension ModelDirectory {
    /// The model to serve from this folder as `name` (nil: its manifest's name, else the ONNX
    /// file's), at numbered `version` (nil: the folder's own file, else its highest version).
    /// A manifest in the folder gives the preprocessing and labels of every version; without
    /// one, the input size is read from the file and ImageNet's preprocessing applies.
    public func servedEntry(name: String?, version: Int? = nil) throws(ModelRepositoryError) -> ServedEntry {
        var manifest: ModelManifest
        let chosenFile: URL
        do {
            switch try contents(version: version) {
            case .manifest(let entry):
                manifest = entry.manifest
                chosenFile = entry.modelURL
                manifest.labels = entry.labelsURL?.path
            case .model(let file, let labels):
                chosenFile = file
                if let shared = try manifestEntry() {
                    manifest = shared.manifest
                    manifest.labels = shared.labelsURL?.path ?? labels?.path
                } else {
                    manifest = try ModelManifest.classifier(
                        in: file, name: file.deletingPathExtension().lastPathComponent.lowercased(), preprocessing: .imagenet,
                        description: "\(file.lastPathComponent) from \(directory.path)", provenance: "served from \(directory.path)", licence: "unknown",
                        labels: labels?.path)
                }
            }
        } catch let error as ModelCatalogError {
            throw .catalog(error)
        } catch let error as ModelRepositoryError {
            throw error
        } catch {
            throw .notAClassifier(path: directory.path, reason: "\(error)")
        }
        manifest.file = chosenFile.path
        if let name { manifest.name = name }
        guard ModelCatalog.isValidName(manifest.name) else { throw .invalidName(folder: directory.path, name: manifest.name) }
        let folderVersion = Int(chosenFile.deletingLastPathComponent().lastPathComponent)
        do {
            return ServedEntry(entry: try entry(for: manifest), version: String(version ?? folderVersion ?? 1))
        } catch {
            throw .catalog(error)
        }
    }
}

/// A folder of model folders, as Triton and OpenVINO Model Server read theirs: each folder's
/// name is its model's name; it holds an ONNX file or numbered version folders holding one,
/// optionally `labels.txt`, a visionpool manifest, and `config.json` (`ModelConfig`).
public struct ModelRepository: Sendable {
    public let directory: URL

    public init(directory: URL) {
        self.directory = directory.standardizedFileURL
    }

    /// The model folders, by name.
    public func modelNames() throws(ModelRepositoryError) -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw .unreadable(path: directory.path, reason: error.localizedDescription)
        }
        return names.filter { name in
            var isFolder: ObjCBool = false
            return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path, isDirectory: &isFolder)
                && isFolder.boolValue
        }.sorted()
    }

    /// The folder of the model `name`.
    public func folder(_ name: String) -> ModelDirectory { ModelDirectory(directory: directory.appendingPathComponent(name, isDirectory: true)) }

    /// The model's configuration: its `config.json`, or the defaults.
    public func config(_ name: String) throws(ModelRepositoryError) -> ModelConfig {
        let file = folder(name).directory.appendingPathComponent(ModelConfig.fileName)
        guard FileManager.default.fileExists(atPath: file.path) else { return ModelConfig() }
        return try ModelConfig.read(file)
    }

    /// The model `name`'s configuration and the versions its policy serves, highest first, each
    /// with its entry; a model whose file lies in its folder serves it as version 1.
    public func served(_ name: String) throws(ModelRepositoryError) -> (config: ModelConfig, versions: [ServedEntry]) {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder(name).directory.path, isDirectory: &isFolder), isFolder.boolValue else {
            throw .noSuchModel(name: name, repository: directory.path, available: (try? modelNames()) ?? [])
        }
        let config = try config(name)
        let available: [Int]
        do {
            available = try folder(name).versions()
        } catch {
            throw .catalog(error)
        }
        let chosen: [Int?] = available.isEmpty ? [nil] : config.versionPolicy.select(from: available)
        guard !chosen.isEmpty else { throw .noVersionChosen(name: name, policy: "\(config.versionPolicy)", available: available.sorted()) }
        return (config, try chosen.map { version throws(ModelRepositoryError) in try folder(name).servedEntry(name: name, version: version) })
    }
}

extension ModelManifest {
    /// The manifest of an ONNX image classifier, its input and output read from the file
    /// (`ModelSignature`): the crop is the input's size and the short side is resized to
    /// `resize`, else to the crop × 8/7 as torchvision's evaluation does.
    public static func classifier(
        in file: URL, name: String, preprocessing: Preprocessing, resize: Int? = nil, scores: Output.Kind = .logits,
        description: String, provenance: String, licence: String, labels: String?
    ) throws(ModelRepositoryError) -> ModelManifest {
        let signature: ModelSignature
        do {
            signature = try ModelSignature(file: file)
        } catch {
            throw .notAClassifier(path: file.path, reason: error.message)
        }
        let input = signature.inputShape, output = signature.outputShape
        guard input.count == 4, input[1] == 3, input[2] > 0, input[3] > 0 else {
            throw .notAClassifier(path: file.path, reason: "the input \(signature.inputName) has shape \(input); an image classifier takes [batch, 3, height, width]")
        }
        guard output.count == 2, output[1] > 0 else {
            throw .notAClassifier(path: file.path, reason: "the output \(signature.outputName) has shape \(output); a classifier gives [batch, classes]")
        }
        var preprocessing = preprocessing
        preprocessing.crop = [input[2], input[3]]
        preprocessing.resizeShortSide = resize ?? (max(input[2], input[3]) * 8 + 6) / 7
        return ModelManifest(
            name: name, description: description, file: file.lastPathComponent, weights: .pretrained, provenance: provenance, licence: licence,
            input: .init(name: signature.inputName, shape: Array(input.dropFirst())),
            output: .init(name: signature.outputName, kind: scores, classes: output[1]),
            preprocessing: preprocessing, labels: labels)
    }
}
