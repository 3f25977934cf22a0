/// Why the catalog could not give a usable model.
public enum ModelCatalogError: Error, Equatable, CustomStringConvertible {
    case catalogUnreadable(directory: String, reason: String)
    case unknownModel(name: String, available: [String])
    /// Set-up could not produce this model on this machine, and recorded why.
    case unavailable(name: String, reason: String)
    case invalidManifest(path: String, problems: [String])
    case modelFileMissing(name: String, path: String)
    case labelsUnreadable(path: String, reason: String)
    case labelsMismatch(path: String, labels: Int, classes: Int)
    case alreadyExists(name: String, manifest: String)
    case writeFailed(path: String, reason: String)
    case modelDirectoryUnreadable(directory: String, reason: String)
    case modelDirectoryEmpty(directory: String)
    case modelDirectoryAmbiguous(directory: String, found: [String])

    public var description: String {
        switch self {
        case .catalogUnreadable(let directory, let reason):
            "cannot read the model catalog at \(directory): \(reason) (set VISIONPOOL_MODELS or pass --models-dir)"
        case .unknownModel(let name, let available):
            "no model named \"\(name)\"; available: \(available.isEmpty ? "none" : available.joined(separator: ", ")) (see `visionpool models`)"
        case .unavailable(let name, let reason):
            "model \(name) is not available on this machine: \(reason) (see `visionpool models`)"
        case .invalidManifest(let path, let problems):
            "invalid model manifest \(path): \(problems.joined(separator: "; "))"
        case .modelFileMissing(let name, let path):
            "model \(name) is not installed: \(path) is missing (run tools/setup.sh to produce the bundled models)"
        case .labelsUnreadable(let path, let reason):
            "cannot read labels \(path): \(reason)"
        case .labelsMismatch(let path, let labels, let classes):
            "labels file \(path) has \(labels) lines but the model has \(classes) classes"
        case .alreadyExists(let name, let manifest):
            "a model named \(name) exists already (\(manifest)); pass --replace to overwrite it"
        case .writeFailed(let path, let reason):
            "cannot write to the catalog at \(path): \(reason)"
        case .modelDirectoryUnreadable(let directory, let reason):
            "cannot read the model folder \(directory): \(reason)"
        case .modelDirectoryEmpty(let directory):
            "the model folder \(directory) holds no .onnx file (looked in it and in its highest numbered version folder)"
        case .modelDirectoryAmbiguous(let directory, let found):
            "the model folder \(directory) holds \(found.joined(separator: ", ")): leave one model file, or one manifest naming it"
        }
    }
}
