import ArgumentParser
import Classification
import Foundation
import ImagePipeline
import ModelCatalog
import WorkerPool

struct Classify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify image files, or every image in folders (recursively).",
        discussion: """
            Prints the top classes of each image as a table, or one JSON object per line with --json. \
            An image that cannot be read is reported and the rest go on; the exit status is 1 if any failed.
            """
    )

    @OptionGroup var selection: ModelSelection
    @OptionGroup var engine: EngineSelection
    @OptionGroup(title: "Worker pool (used for more than one image)") var pool: PoolSelection

    @Flag(help: "Classify in this process, without the worker pool.")
    var inProcess = false

    @Option(help: "How many classes to show per image.")
    var top: Int = 5

    @OptionGroup(title: "Decoding") var decoder: DecoderOptions

    @Flag(help: "One JSON object per image on standard output.")
    var json = false

    @Argument(help: "Image files or folders.", completion: .file())
    var paths: [String]

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
    }

    func run() async throws {
        let served = try selection.servedEntry()
        let entry = served.entry
        let name = selection.describe(served)
        warnIfSynthetic(entry.manifest)
        let (images, missing) = ImageFiles.expand(paths)
        var report = ClassifyReport(json: json)
        for path in missing { report.failed(path: path, kind: "not_found", message: "no such file or folder") }
        var progress = ProgressBar(total: images.count)
        let startup = ContinuousClock.now
        let onPool = !inProcess && images.count > 1
        let summary: String
        if onPool {
            let configuration = try pool.configuration(entry: entry, engine: engine)
            let classifier = try await PoolClassifier(entry: entry, configuration: configuration, decoder: decoder.settings)
            let ready = (ContinuousClock.now - startup).seconds
            let start = ContinuousClock.now
            // Files are read whole before a slot is free: keep only a few in memory at once.
            let window = min(configuration.workers * 2 * configuration.maxBatch, 16)
            try await Self.inOrder(images, window: window, work: { path in
                try await classifier.classify(try ImageFiles.read(path), top: top)
            }, each: { path, outcome in
                progress.clear()
                report.record(path: path, outcome: outcome)
                progress.advance()
            })
            let status = classifier.pool.status
            await classifier.shutdown()
            summary = "\(String(format: "%.2f", (ContinuousClock.now - start).seconds)) s · \(name) on \(configuration.workers) \(engine.kind.rawValue) \(status.precision) workers × \(configuration.threadsPerWorker) threads, batch ≤ \(configuration.maxBatch), ready in \(String(format: "%.2f", ready)) s"
                + (status.precisionFallback.map { "\n  \($0)" } ?? "")
        } else {
            let classifier = try InProcessClassifier(entry: entry, engineOptions: try engine.resolved().options, decoder: decoder.settings)
            let ready = (ContinuousClock.now - startup).seconds
            let start = ContinuousClock.now
            for path in images {
                progress.clear()
                report.record(path: path, outcome: Result { try classifier.classify(try ImageFiles.read(path), top: top) })
                progress.advance()
            }
            let description = classifier.engineDescription
            summary = "\(String(format: "%.2f", (ContinuousClock.now - start).seconds)) s · \(name) in process on \(description.kind.rawValue) \(description.precision), \(description.threads) threads, ready in \(String(format: "%.2f", ready)) s"
                + (description.fallback.map { "\n  \($0)" } ?? "")
        }
        progress.clear()
        printError("\(report.succeeded) classified, \(report.failures) failed in \(summary)")
        if report.failures > 0 { throw ExitCode.failure }
    }

    /// Runs `work` on up to `window` items at once and hands the outcomes to `each` in input order.
    static func inOrder<Output: Sendable>(
        _ items: [String], window: Int, work: @escaping @Sendable (String) async throws -> Output,
        each: (String, Result<Output, Error>) -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: (Int, Result<Output, Error>).self) { group in
            var finished: [Int: Result<Output, Error>] = [:]
            var next = 0
            func flush() {
                while let outcome = finished.removeValue(forKey: next) {
                    each(items[next], outcome)
                    next += 1
                }
            }
            for (index, item) in items.enumerated() {
                if index >= window, let (done, outcome) = try await group.next() { finished[done] = outcome }
                group.addTask {
                    do {
                        return (index, .success(try await work(item)))
                    } catch {
                        return (index, .failure(error))
                    }
                }
                flush()
            }
            for try await (done, outcome) in group {
                finished[done] = outcome
                flush()
            }
        }
    }
}

/// An error whose description is all a user needs.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
