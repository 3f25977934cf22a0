import ArgumentParser
import Benchmarking
import Classification
import Foundation
import InferenceEngines
import ModelCatalog
import WorkerPool

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput and latency.",
        discussion: """
            --in-process (the default) runs the engine alone on a pre-built tensor, back to back, the way \
            OpenVINO's `benchmark_app -hint latency` does, so the two can be compared on the same ONNX file. \
            --pool sends pre-built tensors through the worker pool with --concurrency requests in flight, and \
            also reports the pool's own cost per request (latency less the worker's inference time).
            """
    )

    @Flag(help: "Measure the engine alone in this process.")
    var inProcess = false

    @Flag(help: "Measure the worker pool (shared-memory slots, worker processes), without HTTP.")
    var pool = false

    @OptionGroup var selection: ModelSelection
    @OptionGroup var engine: EngineSelection
    @OptionGroup(title: "Worker pool (--pool)") var poolShape: PoolSelection

    @Option(help: "Images per inference (--in-process).")
    var batch: Int = 1

    @Option(help: "Requests in flight (--pool); default: two batches per worker.")
    var concurrency: Int?

    @Option(help: "Seconds to measure.")
    var duration: Double = 10

    @Option(help: "Seconds to run before measuring (engine warm-up, caches, clocks).")
    var warmUp: Double = 2

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard !(inProcess && pool) else { throw ValidationError("choose one target: --in-process or --pool") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard concurrency.map({ $0 >= 1 }) ?? true else { throw ValidationError("--concurrency must be at least 1") }
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard warmUp >= 0 else { throw ValidationError("--warm-up must not be negative") }
    }

    func run() async throws {
        let entry = try selection.catalog.entry(named: selection.model)
        if pool {
            try await runPool(entry)
        } else {
            try runInProcess(entry)
        }
    }

    private func runInProcess(_ entry: CatalogEntry) throws {
        let startup = ContinuousClock.now
        let engine = try makeEngine(model: try EngineModel(entry: entry), options: engine.options)
        let ready = (ContinuousClock.now - startup).seconds
        let result = try EngineBenchmark.run(
            engine: engine, batch: batch, warmUp: .seconds(warmUp), duration: .seconds(duration), progress: Self.showProgress)
        Self.clearProgress()
        if json { return try printJSON(Report(target: "in-process", model: entry.manifest.name, readySeconds: ready, result: result)) }
        let latency = result.latency
        print("""
            model       \(entry.manifest.name) (\(entry.modelURL.lastPathComponent))
            engine      \(result.engine.kind.rawValue) \(result.engine.version), precision \(result.engine.precision), \(result.engine.threads) threads, batch \(result.batch)
            ready in    \(format(ready)) s
            throughput  \(String(format: "%.1f", result.imagesPerSecond)) images/s (\(result.iterations) inferences in \(String(format: "%.1f", result.seconds)) s)
            latency ms  \(percentiles(latency))
            """)
    }

    private func runPool(_ entry: CatalogEntry) async throws {
        var configuration = try poolShape.configuration(entry: entry, engine: engine)
        configuration.slots = max(configuration.slotCount, (concurrency ?? 0) / configuration.maxBatch + 2)
        let startup = ContinuousClock.now
        let workers = try WorkerPool(configuration: configuration)
        do {
            try await workers.start()
        } catch {
            await workers.shutdown()
            throw error
        }
        let ready = (ContinuousClock.now - startup).seconds
        let inFlight = concurrency ?? configuration.workers * 2 * configuration.maxBatch
        let outcome = await Result {
            try await PoolBenchmark.run(
                pool: workers, concurrency: inFlight, warmUp: .seconds(warmUp), duration: .seconds(duration), progress: Self.showProgress)
        }
        Self.clearProgress()
        await workers.shutdown()
        let result = try outcome.get()
        if json { return try printJSON(Report(target: "pool", model: entry.manifest.name, readySeconds: ready, result: result)) }
        let sizes = result.batchSizes.sorted { Int($0.key)! < Int($1.key)! }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        print("""
            model        \(entry.manifest.name) (\(entry.modelURL.lastPathComponent))
            pool         \(result.workers) \(engine.engine.rawValue) workers × \(result.threadsPerWorker) threads on CPUs \(workers.cpuSets), batch ≤ \(result.maxBatch), \(result.concurrency) requests in flight
            ready in     \(format(ready)) s
            throughput   \(String(format: "%.1f", result.imagesPerSecond)) images/s (\(result.requests) requests in \(String(format: "%.1f", result.seconds)) s)
            latency ms   \(percentiles(result.latency))
            inference ms \(percentiles(result.inference))
            overhead ms  \(percentiles(result.overhead))   (tensor written → scores read, less inference; with more requests in flight than workers, includes waiting behind the worker's previous batch)
            hops µs p50  queue \(micro(result.hops.queue.p50)) → worker \(micro(result.hops.toWorker.p50)) · inference \(micro(result.inference.p50)) · → front \(micro(result.hops.fromWorker.p50)) → request \(micro(result.hops.wake.p50))
            batch sizes  \(sizes) (requests per batch size)
            """)
    }

    private func percentiles(_ latency: LatencySummary) -> String {
        let values = [("p50", latency.p50), ("p90", latency.p90), ("p99", latency.p99), ("p99.9", latency.p999), ("max", latency.max)]
        return values.map { "\($0.0) \(String(format: "%.3f", $0.1))" }.joined(separator: "  ")
    }

    private func format(_ seconds: Double) -> String { String(format: "%.2f", seconds) }

    private func micro(_ milliseconds: Double) -> String { String(format: "%.0f", milliseconds * 1000) }

    private func printJSON(_ report: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }

    private static let onTerminal = isatty(STDERR_FILENO) == 1

    @Sendable private static func showProgress(_ fraction: Double) {
        if onTerminal { FileHandle.standardError.write(Data(String(format: "\rmeasuring… %3.0f%%", fraction * 100).utf8)) }
    }

    private static func clearProgress() {
        if onTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

private struct Report<Result: Encodable>: Encodable {
    let target: String
    let model: String
    let readySeconds: Double
    let result: Result
}

extension Result where Failure == Error {
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
