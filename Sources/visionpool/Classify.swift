import ArgumentParser
import Classification
import Foundation
import ImagePipeline
import ModelCatalog

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify image files, or every image in folders (recursively).",
        discussion: """
            Prints the top classes of each image as a table, or one JSON object per line with --json. \
            An image that cannot be read is reported and the rest go on; the exit status is 1 if any failed.
            """
    )

    /// Files a folder walk picks up; files named directly are always tried.
    static let imageExtensions: Set<String> = ["jpg", "jpeg", "jpe", "png", "bmp", "dib", "webp", "tif", "tiff"]
    /// Files larger than this are refused before they are read.
    static let maxFileBytes = 256 << 20

    @OptionGroup var selection: ModelSelection
    @OptionGroup var engine: EngineSelection

    @Option(help: "How many classes to show per image.")
    var top: Int = 5

    @Option(help: "Refuse images whose header claims more pixels than this (decompression bombs).")
    var maxPixels: Int = PreprocessSpec.defaultMaxPixels

    @Flag(help: "One JSON object per image on standard output.")
    var json = false

    @Argument(help: "Image files or folders.", completion: .file())
    var paths: [String]

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
        guard maxPixels >= 1 else { throw ValidationError("--max-pixels must be at least 1") }
    }

    func run() throws {
        let entry = try selection.catalog.entry(named: selection.model)
        warnIfSynthetic(entry.manifest)
        let startup = ContinuousClock.now
        let classifier = try InProcessClassifier(entry: entry, engineOptions: engine.options, maxPixels: maxPixels)
        let readySeconds = (ContinuousClock.now - startup).seconds

        let (images, missing) = Self.expand(paths)
        var report = ClassifyReport(json: json)
        for path in missing { report.failed(path: path, kind: "not_found", message: "no such file or folder") }
        var progress = ProgressBar(total: images.count)
        let start = ContinuousClock.now
        for path in images {
            progress.clear()
            do {
                let data = try Self.read(path)
                report.classified(path: path, classification: try classifier.classify(data, top: top))
            } catch let error as ClassificationError {
                let kind = switch error {
                case .image(let image): image.kind.rawValue
                case .engine(let engine): engine.kind.rawValue
                }
                report.failed(path: path, kind: kind, message: error.description)
            } catch {
                report.failed(path: path, kind: "unreadable", message: "\(error)")
            }
            progress.advance()
        }
        progress.clear()
        let description = classifier.engine.engineDescription
        printError(
            "\(report.succeeded) classified, \(report.failures) failed in \(String(format: "%.2f", (ContinuousClock.now - start).seconds)) s · "
                + "\(entry.manifest.name) on \(description.kind.rawValue) \(description.precision), \(description.threads) threads, "
                + "ready in \(String(format: "%.2f", readySeconds)) s")
        if report.failures > 0 { throw ExitCode.failure }
    }

    /// Files named directly, then images found in folders (sorted); and the paths that do not exist.
    static func expand(_ paths: [String]) -> (images: [String], missing: [String]) {
        var images: [String] = []
        var missing: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                missing.append(path)
                continue
            }
            guard isDirectory.boolValue else {
                images.append(path)
                continue
            }
            let walker = FileManager.default.enumerator(
                at: URL(fileURLWithPath: path, isDirectory: true), includingPropertiesForKeys: [.isRegularFileKey],
                options: [.skipsHiddenFiles])
            var found: [String] = []
            while let url = walker?.nextObject() as? URL {
                if imageExtensions.contains(url.pathExtension.lowercased()),
                   (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                    found.append(url.path)
                }
            }
            images += found.sorted()
        }
        return (images, missing)
    }

    static func read(_ path: String) throws -> Data {
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        guard size <= maxFileBytes else {
            throw CommandFailure("the file is \(size >> 20) MiB, over the \(maxFileBytes >> 20) MiB limit")
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CommandFailure("cannot read the file: \(error.localizedDescription)")
        }
    }
}

/// An error whose description is all a user needs.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
