import ArgumentParser
import CLinuxShims
import Classification
import Foundation
import InferenceServer
import Logging
import NIOCore
import NIOPosix
import ModelCatalog
import ModelRegistry
import SystemSupport
import WorkerPool

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve models over a Unix-domain socket (and optionally TCP and gRPC) with the KServe v2 protocol.",
        discussion: """
            Models: one catalog model (--model, default efficientnet-lite0), several (--model A --model B), one model's \
            own folder (--model-dir), or every model folder of a repository (--model-repository), each on a pool of its own, \
            the CPUs divided between them (docs/models-repository.md).
            Endpoints: GET /v2/health/live, /v2/health/ready, /v2, /v2/models, /v2/models/NAME[/versions/V], \
            /v2/models/NAME/ready, /v2/models/NAME/config, /v2/models/NAME/stats; POST /v2/models/NAME/infer (FP32 \
            tensors as JSON or binary data, or encoded images as BYTES; the classification extension); POST \
            /v2/repository/index, /v2/repository/models/NAME/load and /unload; POST /v1/models/NAME/classify (or \
            /v1/classify for the only model) with an image as the body. Example:
              curl --unix-socket SOCKET --data-binary @cat.jpg http://localhost/v1/classify
            The first SIGTERM or SIGINT stops gracefully: readiness fails at once, the listeners stop \
            accepting, in-flight requests finish, the workers stop and the socket is removed (exit status 0). \
            A second signal, or --graceful-timeout running out, stops at once: the workers are killed and \
            the requests still running are cut off (exit status 1). Workers run in their own process group \
            and ignore SIGINT and SIGTERM: they stop on the front's word, or die with it.
            Probes: /v2/health/ready answers 503 while no worker can serve (warming up, every worker \
            crashed, stopping); /v2/health/live answers 503 only when no worker has been ready for \
            --liveness-timeout, which the server cannot fix by itself.
            """
    )

    @OptionGroup(title: "Models") var served: ServedModels
    @OptionGroup var engine: EngineSelection
    @OptionGroup(title: "Worker pool") var pool: PoolSelection
    @OptionGroup(title: "Decoding") var decoder: DecoderOptions

    @Option(help: ArgumentHelp("The Unix-domain socket to listen on.", discussion: "Default: $XDG_RUNTIME_DIR/visionpool.sock, else /tmp/visionpool-UID/visionpool.sock (a private folder)."))
    var socket: String?

    @Option(help: "Permissions of the socket file, in octal.")
    var socketMode: String = "600"

    @Flag(help: "Allow a socket in a folder other users may write to (they could stand in for the server).")
    var allowSharedSocketDir = false

    @Option(help: "Also listen on TCP at HOST:PORT (loopback only unless --allow-non-loopback).")
    var tcp: String?

    @Option(help: ArgumentHelp(
        "Also listen for HTTP on PORT on every interface (0.0.0.0), as a server in a container does.",
        discussion: "For containers, whose own network is the boundary (KServe and Kubernetes send traffic to port 8080); elsewhere prefer --tcp on loopback."))
    var httpPort: Int?

    @Option(help: ArgumentHelp(
        "Also serve the KServe v2 protocol over gRPC on this Unix-domain socket.",
        discussion: "inference.GRPCInferenceService (tritonclient.grpc with a unix: target, KServe's grpc-v2); same model, limits and metrics as HTTP."))
    var grpcSocket: String?

    @Option(help: "Also serve the KServe v2 protocol over gRPC at HOST:PORT (loopback only unless --allow-non-loopback).")
    var grpc: String?

    @Flag(help: "Allow --tcp or --grpc on an address other than loopback.")
    var allowNonLoopback = false

    @Option(help: "Largest request body accepted, in bytes (larger ones get 413).")
    var maxBodyBytes: Int = 64 << 20

    @Option(help: "Seconds a request may take unless it sets Timeout-Ms or the timeout parameter (then 504).")
    var requestTimeout: Double = 30

    @Option(help: "Seconds before an idle connection is closed.")
    var idleTimeout: Double = 60

    @Option(help: "Seconds a client has to send a request's body once its headers are in; a slower one is disconnected.")
    var bodyTimeout: Double = 30

    @Option(help: "Seconds the first SIGTERM/SIGINT gives in-flight requests before the server stops anyway.")
    var gracefulTimeout: Double = 20

    @Option(help: ArgumentHelp(
        "Seconds after the first SIGTERM/SIGINT during which the server still takes new requests while readiness answers 503.",
        discussion: """
            A load balancer or Kubernetes takes a moment to notice that a replica is going away; requests it sends meanwhile \
            are served instead of refused. Then the listeners close and in-flight requests drain. Counts toward --graceful-timeout.
            """))
    var shutdownDelay: Double = 0

    @Option(help: "Log format: text (on standard error) or json (one object per line on standard output, for log collectors).")
    var logFormat: LogFormat = .text

    @Option(help: ArgumentHelp(
        "Seconds one batch may run on a worker before the worker is killed and replaced and the batch retried elsewhere.",
        discussion: "Default: ten times the worker's own warm-up time for its largest batch, at least 5 s."))
    var workerTimeout: Double?

    @Option(help: "Seconds with no worker ready (they keep crashing) before /v2/health/live fails, so an orchestrator restarts the server.")
    var livenessTimeout: Double = 60

    @Option(help: ArgumentHelp(
        "Bytes all requests in flight may hold in the front (bodies, parsed tensors, image decoding); past it, new ones get 503 with Retry-After.",
        discussion: "Default: a quarter of the memory the server may use (its cgroup's limit, else the machine's), at least two of the largest requests."))
    var maxInflightBytes: Int?

    @Option(help: "Samples (images or tensors; a request of 8 images counts 8) that may wait for a free slot before new ones get 503 with Retry-After.")
    var maxQueue: Int = 256


    @Flag(help: "Log one line per request.")
    var accessLog = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard let mode = mode_t(socketMode, radix: 8), mode <= 0o777 else { throw ValidationError("--socket-mode must be octal, e.g. 600") }
        _ = mode
        guard maxBodyBytes >= 1 else { throw ValidationError("--max-body-bytes must be at least 1") }
        guard [requestTimeout, idleTimeout, bodyTimeout, gracefulTimeout, livenessTimeout, workerTimeout ?? 1].allSatisfy({ (0.001...86_400).contains($0) }) else {
            throw ValidationError("--request-timeout, --idle-timeout, --body-timeout, --graceful-timeout, --worker-timeout and --liveness-timeout take seconds from 0.001 to 86400")
        }
        guard (maxInflightBytes ?? 1) >= 1 else { throw ValidationError("--max-inflight-bytes must be at least 1") }
        guard maxQueue >= 0 else { throw ValidationError("--max-queue must not be negative") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        if let tcp { _ = try tcpAddress(tcp, option: "--tcp") }
        if let grpc { _ = try tcpAddress(grpc, option: "--grpc") }
        guard httpPort.map({ (1...65535).contains($0) }) ?? true else { throw ValidationError("--http-port takes a port from 1 to 65535") }
        guard tcp == nil || httpPort == nil else { throw ValidationError("--tcp and --http-port both name the TCP listener: pass one") }
        guard shutdownDelay >= 0, shutdownDelay < gracefulTimeout else {
            throw ValidationError("--shutdown-delay must be at least 0 and shorter than --graceful-timeout (\(gracefulTimeout) s), which it counts toward")
        }
    }

    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    /// HOST:PORT, refusing non-loopback hosts unless allowed.
    private func tcpAddress(_ text: String, option: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            throw ValidationError("\(option) takes HOST:PORT, e.g. 127.0.0.1:8000")
        }
        let host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard allowNonLoopback || isLoopback(host) else {
            throw ValidationError("\(option) \(host) is not a loopback address; pass --allow-non-loopback to expose the service")
        }
        return (host, port)
    }

    /// localhost, 127.0.0.0/8 or ::1, parsed as addresses (so "127.evil.example" is not).
    private func isLoopback(_ host: String) -> Bool {
        if host == "localhost" { return true }
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { $0.prefix(15).allSatisfy { $0 == 0 } && $0[15] == 1 }
        }
        return false
    }

    func run() async throws {
        // Swift concurrency's jobs run on NIO's event loops: a request's handler then starts on
        // the thread that read it, instead of waking a thread of Swift's own pool for it.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        var logger = switch logFormat {
        case .text: Logger(label: "visionpool", factory: { StreamLogHandler.standardError(label: $0) })
        case .json: Logger(label: "visionpool", factory: { JSONLinesLogHandler(label: $0) })
        }
        logger.logLevel = Logger.Level(rawValue: logLevel)!
        do {
            try await serve(logger: logger)
        } catch let error as ExitCode {
            throw error
        } catch where logFormat == .json {
            // A collector parsing JSON lines gets the reason the server did not start as one, too.
            logger.critical("\(error)")
            throw ExitCode.failure
        }
    }

    private func serve(logger: Logger) async throws {
        raiseDescriptorLimit(logger: logger)
        returnLargeBuffersWhenFreed(logger: logger)
        logger.info("CPUs: \(CPUBudget.current())")
        let source = try served.source()
        if case .entries(let entries) = source { for served in entries { warnIfSynthetic(served.entry.manifest) { logger.warning("\($0)") } } }
        let (options, devices) = try engine.resolved()
        // One model sized as one pool always was; several divide the CPUs (ModelRegistry).
        let single: Bool = { if case .entries(let entries) = source { entries.count == 1 } else { false } }()
        let shape = pool.shape(threads: engine.threads, gpus: options.device.isGPU ? devices.count : 0)
        let (pool, maxQueue, workerTimeout, livenessTimeout) = (self.pool, self.maxQueue, self.workerTimeout, self.livenessTimeout)
        var settings = ModelRegistry.Settings(
            engine: options, workers: single ? shape.workers : pool.workers, threads: single || engine.threads > 0 ? shape.threads : nil,
            maxBatch: pool.batch(on: options.device), batchDelay: .microseconds(Int64(pool.batchDelay * 1000)), decoder: decoder.settings,
            drainTimeout: .seconds(gracefulTimeout)
        ) { configuration in
            if configuration.engine.device == options.device { configuration.devices = devices }
            configuration.maxRequestsPerWorker = pool.maxRequestsPerWorker
            configuration.oversubscribe = pool.oversubscribe
            configuration.lockSlots = pool.lockSlots
            configuration.workerQueueDepth = pool.workerQueueDepth
            configuration.frontCPUs = single ? pool.frontCPUs : 0
            configuration.maxWaitingRequests = maxQueue
            configuration.workerTimeout = workerTimeout.map(Duration.seconds(_:))
            configuration.livenessTimeout = .seconds(livenessTimeout)
            configuration.logger = logger
        }
        if served.modelControl == .explicit { settings.startupModels = served.loadModels.contains("*") ? nil : served.loadModels }
        let registry = ModelRegistry(source: source, control: served.modelControl, settings: settings, logger: logger)
        let address = try httpPort.map { (host: "0.0.0.0", port: $0) } ?? tcp.map { try tcpAddress($0, option: "--tcp") }
        var configuration = ServerConfiguration(
            socketPath: socket ?? ServerConfiguration.defaultSocketPath(), socketMode: mode_t(socketMode, radix: 8)!,
            tcpHost: address?.host, tcpPort: address?.port, maxBodyBytes: maxBodyBytes,
            requestTimeout: .milliseconds(Int64(requestTimeout * 1000)), idleTimeout: .milliseconds(Int64(idleTimeout * 1000)),
            bodyTimeout: .milliseconds(Int64(bodyTimeout * 1000)))
        configuration.accessLog = accessLog
        configuration.allowSharedDirectory = allowSharedSocketDir
        configuration.gracefulTimeout = .seconds(gracefulTimeout)
        configuration.shutdownDelay = .seconds(shutdownDelay)
        configuration.repositoryPollInterval = served.modelControl == .poll ? .milliseconds(Int64(served.repositoryPollSecs * 1000)) : nil
        configuration.grpc = try [grpcSocket.map { GRPCAddress.unixDomainSocket(path: $0) }, grpc.map { text in
            let (host, port) = try tcpAddress(text, option: "--grpc")
            return GRPCAddress.tcp(host: host, port: port)
        }].compactMap { $0 }
        configuration.maxInflightBytes = maxInflightBytes
        do {
            try await InferenceServer.run(registry: registry, configuration: configuration, logger: logger)
        } catch let error as ServerStopError {
            logger.warning("\(error)")
            throw ExitCode(1)
        }
    }

    /// Every connection is a descriptor: lift the soft limit (often 1024) to the hard one, as
    /// servers do, so many idle clients cannot exhaust it.
    private func raiseDescriptorLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 { logger.warning("cannot raise the open-file limit (errno \(errno))") }
    }

    /// Request bodies (a 12 MP JPEG is several megabytes) are short-lived: with glibc's moving
    /// threshold a burst of them left the front ~300 MB resident long after it passed; mapped
    /// one by one, memory follows the requests in flight (113 MB after the same burst).
    /// Smaller buffers (an ImageNet-size photo decodes to ~0.5 MB) stay in the heaps, which keep
    /// 8 MiB free each: handing every freed page back cost ~20 page faults per request and
    /// 0.5 ms of the front's 3 ms (EfficientNet-Lite0 through the socket, 7–11 % more images/s).
    /// The line is 2 MiB, not 1: a body's buffer is a power of two, and at 1 MiB the 1 MiB buffer of
    /// every 600 KB tensor was mapped and faulted in afresh (0.1 ms of the front's 0.7 ms per request).
    private func returnLargeBuffersWhenFreed(logger: Logger) {
        if CLinuxShims_set_malloc_thresholds(2 << 20, 8 << 20) != 1 { logger.warning("cannot set malloc's mmap and trim thresholds") }
    }
}

extension ModelControl: ExpressibleByArgument {}

/// Which models `serve` serves, and how they are loaded and unloaded.
struct ServedModels: ParsableArguments {
    @Option(name: .customLong("model"), help: ArgumentHelp(
        "A catalog model to serve; repeat it to serve several, each on its own pool (default: \(ModelCatalog.defaultModelName)).",
        discussion: "With --model-dir, the one name to serve that folder's model under.", valueName: "name"))
    var models: [String] = []

    @Option(help: ArgumentHelp("The model catalog folder.", discussion: "Defaults to $VISIONPOOL_MODELS, else the first Models/ folder holding manifests beside the binary or above it."))
    var modelsDir: String?

    @Option(help: ArgumentHelp(
        "Serve the one model in this folder instead of a catalog's (e.g. KServe's /mnt/models; read-only is fine).",
        discussion: """
            An ONNX image classifier, or numbered version folders holding one (the highest is served, under its number), \
            optionally labels.txt and a visionpool manifest (*.json). Nothing is written there.
            """),
        completion: .directory)
    var modelDir: String?

    @Option(help: ArgumentHelp(
        "Serve every model folder in this repository, each on its own pool (Triton's and OpenVINO Model Server's layout).",
        discussion: """
            A model's folder name is its name; it holds an ONNX file or numbered version folders, optionally labels.txt, a \
            manifest, and config.json with its pool shape and version policy (docs/models-repository.md).
            """),
        completion: .directory)
    var modelRepository: String?

    @Option(help: ArgumentHelp(
        "none: every model loads at start and stays; explicit: load and unload through the repository API; poll: also watch the repository for new models and versions.",
        discussion: "With explicit, only the models named by --load-model load at start, as in Triton."))
    var modelControl: ModelControl = .none

    @Option(name: .customLong("load-model"), help: ArgumentHelp("With --model-control explicit, a model to load at start; * for every one.", valueName: "name"))
    var loadModels: [String] = []

    @Option(help: "With --model-control poll, seconds between two reads of the repository.")
    var repositoryPollSecs: Double = 5

    func validate() throws {
        for model in models where !ModelCatalog.isValidName(model) {
            throw ValidationError("--model \(model): names are lower-case letters, digits, '.', '_' and '-'")
        }
        if [modelDir, modelsDir, modelRepository].compactMap({ $0 }).count > 1 {
            throw ValidationError("--model-dir, --models-dir and --model-repository exclude each other: each says where the models come from")
        }
        if modelDir != nil, models.count > 1 { throw ValidationError("--model-dir serves one model: name it with one --model") }
        if modelRepository != nil, !models.isEmpty {
            throw ValidationError("--model names catalog models; a repository serves its folders (with --model-control explicit, --load-model chooses)")
        }
        if modelRepository == nil, modelControl != .none { throw ValidationError("--model-control \(modelControl.rawValue) needs --model-repository") }
        if !loadModels.isEmpty, modelControl != .explicit { throw ValidationError("--load-model is for --model-control explicit") }
        guard (0.1...3600).contains(repositoryPollSecs) else { throw ValidationError("--repository-poll-secs takes seconds from 0.1 to 3600") }
        if Set(models).count != models.count { throw ValidationError("--model names each model once") }
    }

    /// Where the registry's models come from.
    func source() throws -> ModelRegistry.Source {
        if let modelRepository {
            let repository = ModelRepository(directory: URL(fileURLWithPath: modelRepository, isDirectory: true))
            _ = try repository.modelNames()
            return .repository(repository)
        }
        if let modelDir {
            return .entries([try ModelDirectory(directory: URL(fileURLWithPath: modelDir, isDirectory: true)).servedEntry(name: models.first)])
        }
        let catalog = ModelSelection.catalog(at: modelsDir)
        return .entries(try (models.isEmpty ? [ModelCatalog.defaultModelName] : models).map { ServedEntry(entry: try catalog.entry(named: $0), version: "1") })
    }
}
