import Classification
import EngineInterface
import Foundation
import ImagePipeline
import Logging
import ModelCatalog
import Synchronization
import SystemSupport
import WorkerPool

/// How models are loaded and unloaded while a server runs (Triton's model control mode).
public enum ModelControl: String, Sendable, CaseIterable {
    /// Every model is loaded at start; load and unload requests are refused.
    case none
    /// Models are loaded and unloaded on request (at start: every model, or those named).
    case explicit
    /// The repository is watched: a new model or version is loaded, and a version no longer
    /// chosen is drained and unloaded once its successor is ready.
    case poll
}

/// Why the registry would not do what it was asked.
public enum RegistryError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No such model in the repository (or among the models named).
    case unknownModel(String, known: [String])
    /// The repository API is off (`--model-control none`).
    case controlDisabled
    /// The model could not be loaded; it serves nothing, and the index says why.
    case loadFailed(name: String, reason: String)

    public var description: String {
        switch self {
        case .unknownModel(let name, let known):
            "no model \"\(name)\" in the repository (it has: \(known.isEmpty ? "none" : known.joined(separator: ", ")))"
        case .controlDisabled: "loading and unloading models is off: start the server with --model-control explicit or poll"
        case .loadFailed(let name, let reason): "model \(name) could not be loaded: \(reason)"
        }
    }
}

/// Which models and versions a server has loaded, each version on its own pool of workers,
/// and the machine's CPUs divided between the pools (`CPUAllocator`). Loads and unloads of one
/// model happen one at a time; requests find the model they name without waiting for them.
public final class ModelRegistry: Sendable {
    /// What every pool is built with, unless a model's `config.json` says otherwise.
    public struct Settings: Sendable {
        public var engine: EngineOptions
        /// The pool shape the command line asked for; nil: the model's configuration, then the defaults.
        public var workers: Int?
        public var threads: Int?
        public var maxBatch: Int?
        public var batchDelay: Duration
        public var decoder: DecoderSettings
        /// How long an unloaded version's requests in flight may take to finish.
        public var drainTimeout: Duration
        /// Applied last to every pool's configuration: its queue, timeouts and logger.
        public var tune: @Sendable (inout PoolConfiguration) -> Void
        /// The models loaded at start; nil: every one (with `--model-control explicit`, those
        /// named by `--load-model`, as Triton's).
        public var startupModels: [String]?

        public init(
            engine: EngineOptions, workers: Int? = nil, threads: Int? = nil, maxBatch: Int? = nil, batchDelay: Duration = .milliseconds(2),
            decoder: DecoderSettings = DecoderSettings(), drainTimeout: Duration = .seconds(30),
            tune: @escaping @Sendable (inout PoolConfiguration) -> Void = { _ in }
        ) {
            (self.engine, self.workers, self.threads, self.maxBatch, self.batchDelay) = (engine, workers, threads, maxBatch, batchDelay)
            (self.decoder, self.drainTimeout, self.tune) = (decoder, drainTimeout, tune)
        }
    }

    /// Where the models come from.
    public enum Source: Sendable {
        /// Every model folder of a repository, by folder name.
        case repository(ModelRepository)
        /// Models named on the command line (catalog models, or one model's own folder).
        case entries([ServedEntry])
    }

    /// A version's state, as Triton's repository index names them.
    public enum State: String, Sendable {
        case loading = "LOADING", ready = "READY", unloading = "UNLOADING", unavailable = "UNAVAILABLE"
    }

    /// One line of the repository index.
    public struct IndexEntry: Sendable, Equatable {
        public var name: String
        public var version: String?
        public var state: State
        public var reason: String
    }

    /// What a request finds under a model's name.
    public enum Lookup: Sendable {
        case served(LoadedModel)
        /// Known but serving nothing now: loading, unloading, or unavailable, with why.
        case notServing(State, reason: String)
        case unknown
    }

    struct Version {
        var state: State
        var reason = ""
        var model: LoadedModel?
        var cpuSets: [[Int]] = []
    }

    struct Table {
        var models: [String: [String: Version]] = [:]
        /// Why a model has no version at all (a folder that cannot be read, a bad config.json).
        var failures: [String: String] = [:]
        var allocator: CPUAllocator
    }

    public let source: Source
    public let control: ModelControl
    public let settings: Settings
    private let logger: Logger
    private let table: Mutex<Table>
    private let serializer = PerModelSerializer()
    /// The CPUs the pools may use, and how many count.
    private let budget: CPUBudget
    /// Set by the server's first stop signal: readiness fails from then on.
    private let draining = Atomic(false)
    /// Until the models loaded at start are in (or failed), the server is not ready.
    private let startupDone = Atomic(false)

    public init(source: Source, control: ModelControl, settings: Settings, logger: Logger, budget: CPUBudget = .current()) {
        self.source = source
        self.control = control
        self.settings = settings
        self.logger = logger
        self.budget = budget
        table = Mutex(Table(allocator: CPUAllocator(cpus: budget.mask, sharesMask: budget.isQuotaBound)))
    }

    /// The models this registry may serve, by name: the repository's folders, or those named.
    public func modelNames() throws(ModelRepositoryError) -> [String] {
        switch source {
        case .repository(let repository): try repository.modelNames()
        case .entries(let entries): entries.map(\.entry.manifest.name)
        }
    }

    // MARK: Requests

    /// The model a request names: `version`, or the highest ready version.
    public func lookup(_ name: String, version: String? = nil) -> Lookup {
        table.withLock { table in
            guard let versions = table.models[name] else {
                if let failure = table.failures[name] { return .notServing(.unavailable, reason: failure) }
                return .unknown
            }
            if let version, !version.isEmpty {
                guard let entry = versions[version] else { return .unknown }
                if let model = entry.model, entry.state == .ready { return .served(model) }
                return .notServing(entry.state, reason: entry.reason)
            }
            let ready = versions.filter { $0.value.state == .ready && $0.value.model != nil }
            if let newest = ready.keys.max(by: Self.versionOrder) { return .served(ready[newest]!.model!) }
            let (state, reason) = versions.sorted { Self.versionOrder($0.key, $1.key) }.last.map { ($0.value.state, $0.value.reason) } ?? (.unavailable, "")
            return .notServing(state, reason: reason)
        }
    }

    /// Every version that is loaded now.
    public var loaded: [LoadedModel] {
        table.withLock { table in table.models.values.flatMap { $0.values.compactMap(\.model) } }.sorted { ($0.name, $0.version) < ($1.name, $1.version) }
    }

    /// Every model and version the registry knows, with its state and why (Triton's index).
    public func index() -> [IndexEntry] {
        let names = (try? modelNames()) ?? []
        return table.withLock { table in
            var entries: [IndexEntry] = []
            for name in Set(names).union(table.models.keys).union(table.failures.keys).sorted() {
                let versions = table.models[name] ?? [:]
                if versions.isEmpty {
                    entries.append(IndexEntry(name: name, version: nil, state: .unavailable, reason: table.failures[name] ?? "not loaded"))
                }
                for (version, entry) in versions.sorted(by: { Self.versionOrder($0.key, $1.key) }) {
                    entries.append(IndexEntry(name: name, version: version, state: entry.state, reason: entry.reason))
                }
            }
            return entries
        }
    }

    /// The server is stopping: readiness fails at once, while requests still arriving are served.
    public func beginDraining() {
        draining.store(true, ordering: .relaxed)
        for model in loaded { model.beginDraining() }
    }

    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Whether the models loaded at start are all in (or failed): until then the server is not ready.
    public var hasStarted: Bool { startupDone.load(ordering: .relaxed) }

    /// Why the server is not ready, or nil when it is: it is not stopping, the models loaded at
    /// start are in, it serves at least one model, and every version it serves has a worker
    /// ready. A model that failed or was unloaded serves nothing and does not count, nor does
    /// one loading later.
    public var readinessProblem: String? {
        if isDraining { return "the server is stopping" }
        if !hasStarted { return "loading the models" }
        let models = loaded
        if models.isEmpty { return "no model is loaded (\(index().map { "\($0.name): \($0.reason)" }.joined(separator: "; ")))" }
        return models.first { !$0.isReady }.map { "model \($0.name) version \($0.version): \($0.readinessProblem)" }
    }

    /// How the CPUs are divided between the pools now.
    public var cpuSplit: String { table.withLock { $0.allocator.description } }

    // MARK: Loading and unloading

    /// Loads the models `settings.startupModels` names (nil: every one the source holds), one
    /// after another (each compiles and warms before the next), and says which failed; the
    /// others serve.
    public func loadAtStart() async {
        var names: [String]
        do {
            names = try modelNames()
        } catch {
            logger.error("\(error)")
            return
        }
        if let chosen = settings.startupModels {
            for unknown in chosen where !names.contains(unknown) { logger.error("--load-model \(unknown): \(RegistryError.unknownModel(unknown, known: names))") }
            names = names.filter(chosen.contains)
        }
        defer { startupDone.store(true, ordering: .relaxed) }
        for name in names { try? await load(name, expectedModels: names.count) }
        logger.info("models at start: \(index().map { "\($0.name)\($0.version.map { " v\($0)" } ?? "") \($0.state.rawValue)\($0.reason.isEmpty ? "" : " (\($0.reason))")" }.joined(separator: ", ")); CPUs: \(cpuSplit)")
    }

    /// Loads `name`: the versions its policy chooses that are not loaded yet, each compiled and
    /// warmed before it is served; then drains and unloads the versions no longer chosen. A
    /// model already loaded as chosen is left as it is.
    public func load(_ name: String, expectedModels: Int? = nil) async throws(RegistryError) {
        let outcome: Result<Void, RegistryError> = await serializer.run(name) { [self] in
            do throws(RegistryError) {
                try await reconcile(name, expectedModels: expectedModels)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try outcome.get()
    }

    /// Unloads every version of `name`: new requests are refused at once (503 while it drains,
    /// 404 after), those in flight finish, then its workers stop and its CPUs are freed.
    public func unload(_ name: String) async throws(RegistryError) {
        let known = (try? modelNames()) ?? []
        guard known.contains(name) || table.withLock({ $0.models[name] != nil }) else { throw .unknownModel(name, known: known) }
        await serializer.run(name) { [self] in
            for version in table.withLock({ Array(($0.models[name] ?? [:]).keys) }) { await unload(name, version: version, reason: "unloaded") }
            table.withLock { $0.failures[name] = nil }
        }
    }

    /// Stops every pool: what is in flight finishes within `gracePeriod`.
    public func stopAll(gracePeriod: Duration) async {
        let models = loaded
        for model in models { model.beginDraining() }
        await withTaskGroup(of: Void.self) { group in
            for model in models { group.addTask { await model.pool.shutdown(gracePeriod: gracePeriod) } }
        }
    }

    /// Watches the repository every `interval`: models and versions that appear are loaded,
    /// versions no longer chosen are unloaded once their successors serve, models whose folder
    /// went away are unloaded. A model that failed is tried again only once its folder changed.
    public func watch(every interval: Duration) async {
        guard case .repository(let repository) = source else { return }
        var failedListings: [String: [String]] = [:]
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard let names = try? repository.modelNames() else { continue }
            for name in names {
                let listing = ((try? FileManager.default.contentsOfDirectory(atPath: repository.folder(name).directory.path)) ?? []).sorted()
                if failedListings[name] == listing { continue }
                do {
                    try await load(name)
                    failedListings[name] = nil
                } catch {
                    failedListings[name] = listing
                }
            }
            for gone in table.withLock({ Array($0.models.keys) }) where !names.contains(gone) {
                try? await unload(gone)
                table.withLock { $0.models[gone] = nil }
            }
        }
    }

    /// Brings `name` to what its source chooses now (runs one at a time per model).
    private func reconcile(_ name: String, expectedModels: Int?) async throws(RegistryError) {
        let known = (try? modelNames()) ?? []
        guard known.contains(name) else { throw .unknownModel(name, known: known) }
        let chosen: [(version: String, entry: ServedEntry)]
        let config: ModelConfig
        do {
            (config, chosen) = try choose(name)
        } catch {
            table.withLock { $0.failures[name] = "\(error)" }
            logger.error("model \(name) cannot be loaded: \(error)")
            throw .loadFailed(name: name, reason: "\(error)")
        }
        table.withLock { $0.failures[name] = nil }
        var failure: String?
        let loadedNow = table.withLock { table in Set((table.models[name] ?? [:]).filter { $0.value.state == .ready }.keys) }
        for (version, served) in chosen where !loadedNow.contains(version) {
            do {
                try await loadVersion(name, version: version, served: served, config: config, expectedModels: expectedModels)
            } catch {
                failure = failure ?? error.reason
            }
        }
        // Versions no longer chosen drain once a chosen one serves.
        let chosenVersions = Set(chosen.map(\.version))
        let anyChosenReady = table.withLock { table in (table.models[name] ?? [:]).contains { chosenVersions.contains($0.key) && $0.value.state == .ready } }
        if anyChosenReady {
            for version in table.withLock({ Array(($0.models[name] ?? [:]).keys) }) where !chosenVersions.contains(version) {
                await unload(name, version: version, reason: "unloaded: no longer chosen by its version policy")
                table.withLock { _ = $0.models[name]?.removeValue(forKey: version) }
            }
        }
        if let failure { throw .loadFailed(name: name, reason: failure) }
    }

    /// The model's configuration and the versions it serves now, with their entries.
    private func choose(_ name: String) throws(ModelRepositoryError) -> (ModelConfig, [(version: String, entry: ServedEntry)]) {
        switch source {
        case .entries(let entries):
            let served = entries.first { $0.entry.manifest.name == name }!
            return (ModelConfig(), [(served.version, served)])
        case .repository(let repository):
            let (config, versions) = try repository.served(name)
            return (config, versions.map { ($0.version, $0) })
        }
    }

    private struct VersionFailure: Error {
        let reason: String
    }

    private func loadVersion(_ name: String, version: String, served: ServedEntry, config: ModelConfig, expectedModels: Int?) async throws(VersionFailure) {
        let started = ContinuousClock.now
        let shape = poolShape(config, expectedModels: expectedModels)
        let cpuSets = table.withLock { table in
            table.models[name, default: [:]][version] = Version(state: .loading, reason: "compiling and warming up")
            return dividesCPUs ? table.allocator.allocate(workers: shape.workers, threads: shape.threads) : []
        }
        do {
            var engine = settings.engine
            if let kind = config.engine { engine.kind = kind }
            if let precision = config.precision { engine.precision = precision }
            if let device = config.device { engine.device = device }
            var configuration = try PoolConfiguration(
                entry: served.entry, engine: engine, workers: shape.workers, threadsPerWorker: shape.threads,
                maxBatch: config.maxBatch ?? settings.maxBatch ?? 1, batchDelay: config.batchDelay ?? settings.batchDelay)
            if dividesCPUs { configuration.cpuSets = cpuSets }
            settings.tune(&configuration)
            let classifier = try PoolClassifier(unstarted: served.entry, configuration: configuration, decoder: settings.decoder)
            try await classifier.pool.start()
            let model = LoadedModel(name: name, version: version, entry: served.entry, classifier: classifier)
            let split = table.withLock { table in
                table.models[name, default: [:]][version] = Version(state: .ready, model: model, cpuSets: cpuSets)
                return table.allocator.description
            }
            logger.info("""
                loaded \(name) version \(version) in \(String(format: "%.2f", (ContinuousClock.now - started).seconds)) s: \
                \(shape.workers) \(engine.kind.rawValue) \(classifier.pool.status.precision) workers × \(shape.threads) threads on CPUs \
                \(classifier.pool.cpuSets)\(classifier.pool.frontCPUSet.isEmpty ? "" : ", the front on \(classifier.pool.frontCPUSet)")\
                \(dividesCPUs ? "; CPUs now: \(split)" : "")
                """)
        } catch {
            table.withLock { table in
                table.allocator.release(cpuSets)
                table.models[name, default: [:]][version] = Version(state: .unavailable, reason: "failed to load: \(error)")
            }
            logger.error("model \(name) version \(version) failed to load: \(error)")
            throw VersionFailure(reason: "version \(version): \(error)")
        }
    }

    /// Drains and stops one version; it stays in the index as unavailable, with `reason`.
    private func unload(_ name: String, version: String, reason: String) async {
        guard let model = table.withLock({ table -> LoadedModel? in
            guard let entry = table.models[name]?[version], let model = entry.model else { return nil }
            table.models[name]![version] = Version(state: .unloading, reason: "draining its requests in flight", model: nil, cpuSets: entry.cpuSets)
            return model
        }) else { return }
        model.beginDraining()
        await model.pool.shutdown(gracePeriod: settings.drainTimeout)
        table.withLock { table in
            table.allocator.release(table.models[name]?[version]?.cpuSets ?? [])
            table.models[name]?[version] = Version(state: .unavailable, reason: reason)
        }
        logger.info("unloaded \(name) version \(version)")
    }

    /// Whether the pools share the machine through `CPUAllocator`; one model named on the
    /// command line places its own workers (`CPUPlacement`, with `--front-cpus` and the rest).
    private var dividesCPUs: Bool {
        if case .entries(let entries) = source { return entries.count > 1 }
        return true
    }

    /// Workers and threads for one pool: the model's configuration, else the command line's,
    /// else one single-thread worker per CPU divided evenly between the models (at least one).
    private func poolShape(_ config: ModelConfig, expectedModels: Int?) -> (workers: Int, threads: Int) {
        let models = max(1, expectedModels ?? (table.withLock { $0.models.values.filter { !$0.isEmpty }.count } + 1))
        let workers = config.workers ?? settings.workers ?? max(1, budget.count / models)
        return (workers, config.threads ?? settings.threads ?? 1)
    }

    /// Versions in numeric order where they are numbers.
    static func versionOrder(_ a: String, _ b: String) -> Bool {
        switch (Int(a), Int(b)) {
        case (let x?, let y?): x < y
        default: a < b
        }
    }
}

/// Runs operations on one model one at a time, in the order they were asked for; operations on
/// different models run side by side.
private actor PerModelSerializer {
    private var tails: [String: Task<Void, Never>] = [:]

    func run<Result: Sendable>(_ key: String, _ body: @escaping @Sendable () async -> Result) async -> Result {
        let previous = tails[key]
        let task = Task<Result, Never> {
            await previous?.value
            return await body()
        }
        tails[key] = Task { _ = await task.value }
        return await task.value
    }
}
