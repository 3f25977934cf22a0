import ArgumentParser
import Benchmarking
import Foundation
import InferenceEngines
import ModelCatalog

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput and latency.",
        discussion: """
            --in-process runs the engine alone on a pre-built tensor, back to back, the way OpenVINO's \
            `benchmark_app -hint latency` does, so the two can be compared on the same ONNX file.
            """
    )

    @Flag(help: "Measure the engine alone in this process (the only target so far, and the default).")
    var inProcess = false

    @OptionGroup var selection: ModelSelection
    @OptionGroup var engine: EngineSelection

    @Option(help: "Images per inference.")
    var batch: Int = 1

    @Option(help: "Seconds to measure.")
    var duration: Double = 10

    @Option(help: "Seconds to run before measuring (engine warm-up, caches, clocks).")
    var warmUp: Double = 2

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard warmUp >= 0 else { throw ValidationError("--warm-up must not be negative") }
    }

    func run() throws {
        let entry = try selection.catalog.entry(named: selection.model)
        let startup = ContinuousClock.now
        let engine = try makeEngine(model: try EngineModel(entry: entry), options: engine.options)
        let ready = (ContinuousClock.now - startup).seconds
        let onTerminal = isatty(STDERR_FILENO) == 1
        let result = try EngineBenchmark.run(
            engine: engine, batch: batch, warmUp: .seconds(warmUp), duration: .seconds(duration),
            progress: { fraction in
                if onTerminal { FileHandle.standardError.write(Data(String(format: "\rmeasuring… %3.0f%%", fraction * 100).utf8)) }
            })
        if onTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(InProcessReport(model: entry.manifest.name, readySeconds: ready, result: result)), as: UTF8.self))
            return
        }
        let latency = result.latency
        print("""
            model       \(entry.manifest.name) (\(entry.modelURL.lastPathComponent))
            engine      \(result.engine.kind.rawValue) \(result.engine.version), precision \(result.engine.precision), \(result.engine.threads) threads, batch \(result.batch)
            ready in    \(String(format: "%.2f", ready)) s
            throughput  \(String(format: "%.1f", result.imagesPerSecond)) images/s (\(result.iterations) inferences in \(String(format: "%.1f", result.seconds)) s)
            latency ms  p50 \(format(latency.p50))  p90 \(format(latency.p90))  p99 \(format(latency.p99))  p99.9 \(format(latency.p999))  max \(format(latency.max))
            """)
    }

    private func format(_ milliseconds: Double) -> String { String(format: "%.2f", milliseconds) }
}

private struct InProcessReport: Encodable {
    let target = "in-process"
    let model: String
    let readySeconds: Double
    let result: EngineBenchmarkResult
}
