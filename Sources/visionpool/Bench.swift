import SystemSupport
import ArgumentParser
import Benchmarking
import Classification
import Foundation
import ImagePipeline
import InferenceEngines
import ModelCatalog
import WorkerPool

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput and latency: of the engine, the worker pool, or a running server.",
        discussion: """
            Targets: --in-process (the default) runs the engine alone in this process, one request at a time, \
            the way OpenVINO's `benchmark_app -hint latency` does; --pool goes through the worker pool and \
            shared memory without HTTP; --socket PATH or --url URL measures a running `visionpool serve` (or any \
            KServe v2 server) end to end. Every target is measured the same way.

            Workloads (--workload, NAME[=WEIGHT],…): tensor (pre-built tensors, no decoding), imagenet (≈500×375 \
            JPEGs), camera (12 MP JPEGs), or a folder of your images; several mix by weight, e.g. imagenet=3,camera=1. \
            The JPEGs are made from the bundled photos by tools/setup.sh into the catalog's bench/ folder.

            Load: a closed loop with --concurrency requests in flight (capacity), or an open loop with Poisson \
            arrivals at --rate per second (latency under a given load; it counts from each scheduled arrival, so \
            queueing shows). Warm-up requests are not counted.

            Several models (--models NAME[=WEIGHT],… with --socket, --url, --grpc-socket or --grpc-url): requests \
            are spread over a server's models by weight, as applications sharing one server spread them; the report \
            shows the run as a whole and each model apart.

            Sweeps: --sweep workers=1,2 threads=1,2 batch=1,4,8 runs every combination in one invocation under \
            the same load and recommends one configuration for throughput and one for latency.

            Output: a table; --json FILE (- for standard output; schema in docs/bench-report.schema.json); \
            --chart FILE.png.

            Examples:
              visionpool bench --in-process --model resnet50 --threads 2
              visionpool bench --pool --workload imagenet --sweep workers=1,2 batch=1,4 --chart sweep.png
              visionpool bench --socket /tmp/vp.sock --workload imagenet=3,camera=1 --rate 40 --json run.json
              visionpool bench --socket /tmp/vp.sock --models efficientnet-lite0=3,tiny=1 --workload imagenet
            """
    )

    @Flag(help: "Target: the engine alone in this process (default).")
    var inProcess = false

    @Flag(help: "Target: the worker pool (shared-memory slots, worker processes), without HTTP.")
    var pool = false

    @Option(help: "Target: a running server's Unix-domain socket.", completion: .file())
    var socket: String?

    @Option(help: "Target: a running KServe v2 server's base URL, e.g. http://127.0.0.1:8000.")
    var url: String?

    @Option(help: "Target: a running server's KServe v2 gRPC Unix-domain socket (serve --grpc-socket).", completion: .file())
    var grpcSocket: String?

    @Option(help: "Target: a running KServe v2 gRPC server at HOST:PORT (serve --grpc), e.g. 127.0.0.1:8001.")
    var grpcURL: String?

    @OptionGroup var selection: ModelSelection

    @Option(help: ArgumentHelp("A server's models to spread requests over, by weight: NAME[=WEIGHT],… (instead of --model).", valueName: "mix"))
    var models: String?
    @OptionGroup(title: "Engine (--in-process and --pool)") var engine: EngineSelection
    @OptionGroup(title: "Worker pool (--pool)") var poolShape: PoolSelection
    @OptionGroup(title: "Decoding (--in-process and --pool)") var decoder: DecoderOptions

    @Option(help: "Images per inference (--in-process).")
    var batch: Int = 1

    @Option(help: ArgumentHelp("What to send: NAME[=WEIGHT],… with NAME tensor, imagenet, camera or a folder.",
                               discussion: "Default: tensor for --in-process, imagenet otherwise."))
    var workload: String?

    @Option(help: ArgumentHelp("Closed loop: requests in flight.",
                               discussion: "Default: 1 in process; two batches per worker for the pool; 2 per CPU for a server."))
    var concurrency: Int?

    @Option(help: "Open loop: requests per second, Poisson arrivals (instead of --concurrency).")
    var rate: Double?

    @Option(help: "Seconds to measure, per configuration.")
    var duration: Double = 10

    @Option(help: "Measure this many requests instead (still at most --duration seconds).")
    var requests: Int?

    @Option(help: "Seconds to run before measuring (engine warm-up, caches, clocks).")
    var warmUp: Double = 2

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Run every combination of NAME=V1,V2,… (workers, threads, batch).", valueName: "term"))
    var sweep: [String] = []

    @Option(help: "Seconds a request to a server may take.")
    var requestTimeout: Double = 60

    @Option(help: "Write the report as JSON to this file (- for standard output).", completion: .file())
    var json: String?

    @Option(help: "Draw throughput and latency per configuration into this PNG file.", completion: .file())
    var chart: String?

    private enum TargetKind: String { case inProcess = "in-process", pool, socket, url, grpcSocket = "grpc-socket", grpcURL = "grpc-url" }

    private var targetKind: TargetKind {
        if pool { return .pool }
        if socket != nil { return .socket }
        if url != nil { return .url }
        if grpcSocket != nil { return .grpcSocket }
        if grpcURL != nil { return .grpcURL }
        return .inProcess
    }

    func validate() throws {
        let chosen = [inProcess, pool, socket != nil, url != nil, grpcSocket != nil, grpcURL != nil].filter { $0 }.count
        guard chosen <= 1 else { throw ValidationError("choose one target: --in-process, --pool, --socket, --url, --grpc-socket or --grpc-url") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard concurrency.map({ $0 >= 1 }) ?? true else { throw ValidationError("--concurrency must be at least 1") }
        guard rate.map({ $0 > 0 && $0.isFinite }) ?? true else { throw ValidationError("--rate must be a positive number of requests per second") }
        guard concurrency == nil || rate == nil else { throw ValidationError("--concurrency is a closed loop and --rate an open one: give one") }
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard requests.map({ $0 >= 1 }) ?? true else { throw ValidationError("--requests must be at least 1") }
        guard warmUp >= 0 else { throw ValidationError("--warm-up must not be negative") }
        guard requestTimeout > 0 else { throw ValidationError("--request-timeout must be positive") }
        let parsed = try parsedSweep()
        if !parsed.values.isEmpty {
            guard targetKind == .pool || targetKind == .inProcess else {
                throw ValidationError("--sweep needs --pool or --in-process: a running server's shape is fixed")
            }
            guard targetKind == .pool || parsed.values[.workers] == nil else { throw ValidationError("--sweep workers=… needs --pool") }
        }
        if let workload { _ = try Workload.parse(workload) }
        if let models {
            guard [.socket, .url, .grpcSocket, .grpcURL].contains(targetKind) else {
                throw ValidationError("--models spreads requests over a server's models: give --socket, --url, --grpc-socket or --grpc-url")
            }
            guard selection.model == nil else { throw ValidationError("give --model or --models, not both") }
            _ = try Workload.parse(models)
        }
    }

    private func parsedSweep() throws -> Sweep {
        do {
            return try Sweep(parsing: sweep)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        let started = Date()
        let kind = targetKind
        let limits = RunLimits(warmUp: .seconds(warmUp), duration: .seconds(duration), requests: requests)
        let cpus = CPUBudget.current().count
        let workloadText = workload ?? (kind == .inProcess ? "tensor" : "imagenet")
        let benchDirectory = selection.catalog.directory.appendingPathComponent("bench", isDirectory: true)
        var runs: [BenchRun] = []
        var skipped: [SkippedRun] = []
        let load: LoadModel
        let target: BenchReport.Target
        let loaded: Workload

        switch kind {
        case .socket, .url, .grpcSocket, .grpcURL:
            let connections = concurrency ?? (rate == nil ? 2 * cpus : 256)
            let server = try await connect(kind, connections: connections)
            do {
                if let mix = server as? ModelMixTarget, try Workload.parse(workloadText).contains(where: { $0.name == "tensor" }),
                   let conflict = mix.tensorShapeConflict {
                    throw CommandFailure(conflict)
                }
                loaded = try Workload.load(workloadText, benchDirectory: benchDirectory, sampleShape: server.sampleShape)
                load = rate.map { .open(rate: $0) } ?? .closed(concurrency: connections)
                target = BenchReport.Target(kind: kind.rawValue, address: server.address)
                let measurement = await measure(server, loaded, load, limits, label: "server")
                runs.append(BenchRun(configuration: BenchConfiguration(workers: nil, threads: nil, batch: nil), readySeconds: nil, measurement: measurement))
            } catch {
                await server.close()
                throw error
            }
            await server.close()
        case .inProcess, .pool:
            let entry = try selection.entry()
            loaded = try Workload.load(workloadText, benchDirectory: benchDirectory, sampleShape: entry.manifest.input.shape)
            let configurations = try parsedSweep().configurations(base: try baseConfiguration(kind))
            if kind == .pool {
                let largest = configurations.map { ($0.workers ?? 1) * ($0.batch ?? 1) }.max() ?? 1
                load = rate.map { .open(rate: $0) } ?? .closed(concurrency: concurrency ?? 2 * largest)
            } else {
                load = rate.map { .open(rate: $0) } ?? .closed(concurrency: concurrency ?? 1)
            }
            target = BenchReport.Target(
                kind: kind.rawValue, engine: engine.kind.rawValue, precision: engine.precision.rawValue, device: engine.device.argument)
            for configuration in configurations {
                do {
                    let (readySeconds, measurement) = kind == .pool
                        ? try await measurePool(entry, configuration, loaded, load, limits)
                        : try await measureInProcess(entry, configuration, loaded, load, limits)
                    runs.append(BenchRun(configuration: configuration, readySeconds: readySeconds, measurement: measurement))
                } catch {
                    guard configurations.count > 1 else { throw error }
                    skipped.append(SkippedRun(configuration: configuration, reason: "\(error)"))
                }
            }
        }

        let report = BenchReport(
            startedAt: started, model: models.flatMap { try? Workload.parse($0) }.map(Self.mixDescription) ?? selection.modelName, target: target, workload: loaded.summary,
            load: BenchReport.Load(load, limits: limits), runs: runs, skipped: skipped)
        if json == "-" {
            FileHandle.standardOutput.write(try report.json() + Data("\n".utf8))
        } else {
            print(report.table)
        }
        if let json, json != "-" { try write(try report.json(), to: json) }
        if let chart { try write(try BenchChart.png(report), to: chart) }
        if runs.allSatisfy({ $0.measurement.requests == 0 }) { throw ExitCode.failure }
    }

    /// The server target: one model's, or one per model of `--models` spread by weight.
    private func connect(_ kind: TargetKind, connections: Int) async throws -> any ServerTarget {
        func connect(_ model: String) async throws -> any ServerTarget {
            if kind == .socket || kind == .url {
                try await HTTPTarget.connect(socketPath: socket, url: url, model: model, connections: connections, timeout: .seconds(requestTimeout))
            } else {
                try await GRPCTarget.connect(socketPath: grpcSocket, hostAndPort: grpcURL, model: model, timeout: .seconds(requestTimeout))
            }
        }
        guard let models else { return try await connect(selection.modelName) }
        var targets: [(name: String, weight: Int, target: any ServerTarget)] = []
        do {
            for (name, weight) in try Workload.parse(models) { targets.append((name, weight, try await connect(name))) }
            return try ModelMixTarget(targets)
        } catch {
            for target in targets { await target.target.close() }
            throw error
        }
    }

    private static func mixDescription(_ models: [(name: String, weight: Int)]) -> String {
        models.map { "\($0.name)×\($0.weight)" }.joined(separator: " + ")
    }

    /// The configuration the options describe, before any sweep.
    private func baseConfiguration(_ kind: TargetKind) throws -> BenchConfiguration {
        guard kind == .pool else {
            return BenchConfiguration(workers: nil, threads: engine.threads > 0 ? engine.threads : CPUBudget.current().count, batch: batch)
        }
        let (options, devices) = try engine.resolved()
        let (workers, threads) = poolShape.shape(threads: engine.threads, gpus: options.device.isGPU ? devices.count : 0)
        return BenchConfiguration(workers: workers, threads: threads, batch: poolShape.batch(on: options.device))
    }

    private func measureInProcess(
        _ entry: CatalogEntry, _ configuration: BenchConfiguration, _ workload: Workload, _ load: LoadModel, _ limits: RunLimits
    ) async throws -> (Double, RunMeasurement) {
        var options = try engine.resolved().options
        options.threads = configuration.threads ?? 0
        let startup = ContinuousClock.now
        let target = InProcessTarget(
            engine: try loadEngine(model: try EngineModel(entry: entry), options: options, warmUpBatches: configuration.batch ?? 1).engine,
            spec: PreprocessSpec(entry.manifest.preprocessing, decoder: decoder.settings), batch: configuration.batch ?? 1)
        let ready = (ContinuousClock.now - startup).seconds
        return (ready, await measure(target, workload, load, limits, label: configuration.label))
    }

    private func measurePool(
        _ entry: CatalogEntry, _ configuration: BenchConfiguration, _ workload: Workload, _ load: LoadModel, _ limits: RunLimits
    ) async throws -> (Double, RunMeasurement) {
        var shape = poolShape
        shape.workers = configuration.workers
        shape.maxBatch = configuration.batch
        var engine = self.engine
        engine.threads = configuration.threads ?? 0
        try shape.validate()
        var poolConfiguration = try shape.configuration(entry: entry, engine: engine)
        if case .closed(let inFlight) = load {
            poolConfiguration.slots = max(poolConfiguration.slotCount, inFlight / poolConfiguration.maxBatch + 2)
        }
        let startup = ContinuousClock.now
        let workers = try WorkerPool(configuration: poolConfiguration)
        try await workers.start()
        let ready = (ContinuousClock.now - startup).seconds
        let measurement = await measure(
            PoolTarget(pool: workers, spec: PreprocessSpec(entry.manifest.preprocessing, decoder: decoder.settings)), workload, load, limits, label: configuration.label)
        await workers.shutdown()
        return (ready, measurement)
    }

    private func measure(_ target: some BenchTarget, _ workload: Workload, _ load: LoadModel, _ limits: RunLimits, label: String) async -> RunMeasurement {
        let measurement = await LoadRunner.run(target: target, workload: workload, load: load, limits: limits) { progress in
            Self.show(progress, label: label)
        }
        StatusLine.clear()
        return measurement
    }

    private func write(_ data: Data, to path: String) throws {
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CommandFailure("cannot write \(path): \(error.localizedDescription)")
        }
    }

    @Sendable private static func show(_ progress: RunProgress, label: String) {
        let phase = progress.warmingUp ? "warming up" : String(format: "%3.0f%%", progress.fraction * 100)
        StatusLine.draw(String(format: "%@  %@  %d requests  %.1f images/s  %d failed", label, phase, progress.completed,
                               progress.imagesPerSecond, progress.failed))
    }
}
