import Foundation

/// The models in one folder: a `NAME.json` manifest each, beside the files it names.
public struct ModelCatalog: Sendable {
    /// The model `classify` uses when none is named.
    public static let defaultModelName = "efficientnet-lite0"

    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    /// `VISIONPOOL_MODELS` if set; otherwise the first `Models/` folder holding a manifest in
    /// the running binary's folder or one above it: beside an installed `bin/visionpool`
    /// (`PREFIX/Models`), or the checkout's for a binary in its `.build/`. Found from where the
    /// binary is (`/proc/self/exe`), never from where its source was, so a copied binary works.
    public static func defaultDirectory(
        environment: [String: String] = ProcessInfo.processInfo.environment, executable: URL = runningExecutable
    ) -> URL {
        if let configured = environment["VISIONPOOL_MODELS"], !configured.isEmpty {
            return URL(fileURLWithPath: configured, isDirectory: true)
        }
        var folder = executable.deletingLastPathComponent()
        while folder.path != "/" {
            let candidate = folder.appendingPathComponent("Models", isDirectory: true)
            let files = (try? FileManager.default.contentsOfDirectory(atPath: candidate.path)) ?? []
            if files.contains(where: { $0.hasSuffix(".json") }) { return candidate }
            folder.deleteLastPathComponent()
        }
        // Nothing found: name the place beside the binary, which the error then shows.
        return executable.deletingLastPathComponent().appendingPathComponent("Models", isDirectory: true)
    }

    /// The running binary with its links resolved.
    public static var runningExecutable: URL {
        URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
            .resolvingSymlinksInPath()
    }

    /// Lower-case names that are safe as file names and URL path segments.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count), let first = name.utf8.first else { return false }
        let lettersAndDigits = { (byte: UInt8) in (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
        return lettersAndDigits(first) && name.utf8.allSatisfy { lettersAndDigits($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    /// Every manifest in the folder, by name (so an int8 model follows its f32 model).
    public func entries() throws(ModelCatalogError) -> [CatalogEntry] {
        let files: [URL]
        do {
            files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
        } catch {
            throw .catalogUnreadable(directory: directory.path, reason: error.localizedDescription)
        }
        return try files.filter { $0.pathExtension == "json" }
            .sorted { $0.deletingPathExtension().lastPathComponent < $1.deletingPathExtension().lastPathComponent }
            .map { manifestURL throws(ModelCatalogError) in try CatalogEntry(manifestURL: manifestURL) }
    }

    /// The model called `name`, with its manifest checked and its files present.
    public func entry(named name: String) throws(ModelCatalogError) -> CatalogEntry {
        guard ModelCatalog.isValidName(name) else { throw .unknownModel(name: name, available: (try? entries().map(\.manifest.name)) ?? []) }
        let manifestURL = directory.appendingPathComponent("\(name).json")
        guard FileManager.default.fileExists(atPath: manifestURL.path) else {
            if let reason = unavailableModels()[name] { throw .unavailable(name: name, reason: reason) }
            throw .unknownModel(name: name, available: (try? entries().map(\.manifest.name)) ?? [])
        }
        let entry = try CatalogEntry(manifestURL: manifestURL)
        guard entry.manifest.name == name else {
            throw .invalidManifest(path: manifestURL.path, problems: ["its name \"\(entry.manifest.name)\" differs from its file name"])
        }
        return entry
    }

    /// Models set-up could not produce on this machine, by name, with why: `tools/setup.sh` writes
    /// a `NAME.unavailable` file (its reason, one line) in place of the model and its manifest
    /// when an optional model fails, and removes it once the model is made.
    public func unavailableModels() -> [String: String] {
        let files = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? []
        return Dictionary(uniqueKeysWithValues: files.filter { $0.pathExtension == Self.unavailableExtension }.compactMap { file in
            let name = file.deletingPathExtension().lastPathComponent
            guard ModelCatalog.isValidName(name), !FileManager.default.fileExists(atPath: directory.appendingPathComponent("\(name).json").path),
                  let text = try? String(contentsOf: file, encoding: .utf8) else { return nil }
            let reason = text.trimmingCharacters(in: .whitespacesAndNewlines)
            return (name, reason.isEmpty ? "set-up could not produce it" : reason)
        })
    }

    /// The file extension of set-up's record of a model it could not produce.
    public static let unavailableExtension = "unavailable"

    /// Adds a model: copies its file (and labels) into the catalog and writes its manifest.
    /// Nothing is left behind if any step fails.
    public func add(_ manifest: ModelManifest, modelFile: URL, labelsFile: URL?, replacing: Bool = false) throws(ModelCatalogError) -> CatalogEntry {
        let problems = manifest.problems
        guard problems.isEmpty else { throw .invalidManifest(path: "\(manifest.name).json", problems: problems) }
        let manifestURL = directory.appendingPathComponent("\(manifest.name).json")
        if !replacing && FileManager.default.fileExists(atPath: manifestURL.path) {
            throw .alreadyExists(name: manifest.name, manifest: manifestURL.path)
        }
        var stored = manifest
        stored.file = "\(manifest.name).onnx"
        stored.labels = labelsFile.map { _ in "\(manifest.name).labels.txt" }
        if let labelsFile {
            let labels = try CatalogEntry.readLabels(at: labelsFile)
            guard labels.count == manifest.output.classes else {
                throw .labelsMismatch(path: labelsFile.path, labels: labels.count, classes: manifest.output.classes)
            }
        }
        var written: [URL] = []
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var copies = [(modelFile, directory.appendingPathComponent(stored.file))]
            if let labelsFile, let name = stored.labels { copies.append((labelsFile, directory.appendingPathComponent(name))) }
            for (source, destination) in copies {
                let temporary = destination.appendingPathExtension("partial")
                try? FileManager.default.removeItem(at: temporary)
                try FileManager.default.copyItem(at: source, to: temporary)
                written.append(temporary)
            }
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let temporaryManifest = manifestURL.appendingPathExtension("partial")
            try encoder.encode(stored).write(to: temporaryManifest)
            written.append(temporaryManifest)
            for temporary in written {
                let destination = temporary.deletingPathExtension()
                _ = try? FileManager.default.removeItem(at: destination)
                try FileManager.default.moveItem(at: temporary, to: destination)
            }
        } catch {
            for temporary in written { try? FileManager.default.removeItem(at: temporary) }
            throw .writeFailed(path: directory.path, reason: error.localizedDescription)
        }
        return try CatalogEntry(manifestURL: manifestURL)
    }
}

/// One manifest and the files it points to.
public struct CatalogEntry: Sendable {
    public let manifest: ModelManifest
    public let manifestURL: URL

    /// A manifest made in memory, its files resolved beside `manifestURL`.
    init(manifest: ModelManifest, manifestURL: URL) {
        self.manifest = manifest
        self.manifestURL = manifestURL
    }

    init(manifestURL: URL) throws(ModelCatalogError) {
        let data: Data
        do {
            data = try Data(contentsOf: manifestURL)
        } catch {
            throw .invalidManifest(path: manifestURL.path, problems: [error.localizedDescription])
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            manifest = try decoder.decode(ModelManifest.self, from: data)
        } catch {
            throw .invalidManifest(path: manifestURL.path, problems: [Self.describe(error)])
        }
        let problems = manifest.problems
        guard problems.isEmpty else { throw .invalidManifest(path: manifestURL.path, problems: problems) }
        self.manifestURL = manifestURL
    }

    public var modelURL: URL { resolve(manifest.file) }
    public var labelsURL: URL? { manifest.labels.map(resolve) }

    /// Whether the model file exists (generated models appear after `tools/setup.sh`).
    public var isInstalled: Bool { FileManager.default.fileExists(atPath: modelURL.path) }

    /// The model file's path, or an error saying how to produce it.
    public func installedModelURL() throws(ModelCatalogError) -> URL {
        guard isInstalled else { throw .modelFileMissing(name: manifest.name, path: modelURL.path) }
        return modelURL
    }

    /// One label per class; class indices stand in when the manifest names no labels.
    public func labels() throws(ModelCatalogError) -> [String] {
        guard let labelsURL else { return (0..<manifest.output.classes).map { "class \($0)" } }
        let labels = try Self.readLabels(at: labelsURL)
        guard labels.count == manifest.output.classes else {
            throw .labelsMismatch(path: labelsURL.path, labels: labels.count, classes: manifest.output.classes)
        }
        return labels
    }

    static func readLabels(at url: URL) throws(ModelCatalogError) -> [String] {
        do {
            let text = try String(contentsOf: url, encoding: .utf8)
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            if lines.last == "" { lines.removeLast() }
            return lines
        } catch {
            throw .labelsUnreadable(path: url.path, reason: error.localizedDescription)
        }
    }

    private func resolve(_ path: String) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : manifestURL.deletingLastPathComponent().appendingPathComponent(path)
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing key \(path(context.codingPath + [key]))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "wrong type at \(path(context.codingPath)): \(context.debugDescription)"
        case DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "invalid value at \(path(context.codingPath)): \(context.debugDescription)"
        default:
            return error.localizedDescription
        }
    }

    private static func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map(String.init) ?? $0.stringValue.snakeCased }.joined(separator: ".")
    }
}

extension String {
    /// `resizeShortSide` → `resize_short_side`, as keys are spelled in manifests.
    fileprivate var snakeCased: String {
        var result = ""
        for character in self {
            if character.isUppercase {
                result += "_" + character.lowercased()
            } else {
                result.append(character)
            }
        }
        return result
    }
}
