import Classification
import Hummingbird
import Metrics
import ModelRegistry
import Prometheus
import Synchronization
import WorkerPool

/// What the server counts and times, per model and version, exported in Prometheus's text
/// format at `/metrics`.
public struct ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// Every metric is made through this factory, not the process-wide one, so that each
    /// server (and each in-process test of the routes) has a registry of its own.
    private let factory: PrometheusMetricsFactory
    /// Each model version's metrics and each request counter, made on first use and kept:
    /// looking a metric up in the registry takes a lock, and these are per request.
    private let made = MetricTable()

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        factory.valueHistogramBuckets = ["visionpool_batch_size": [1, 2, 4, 8, 16]]
        self.factory = factory
    }

    /// The protocol a request came in by.
    enum WireProtocol: String {
        case http, grpc
    }

    /// One model version's stage timers, batch sizes and in-flight gauge.
    final class ModelSet: Sendable {
        let stageTimers: [Stage: Metrics.Timer]
        let totalTimer: Metrics.Timer
        let batchSizes: Recorder
        let inFlight: Meter

        init(model: String, version: String, factory: PrometheusMetricsFactory) {
            let labels = [("model", model), ("version", version)]
            let timer = { (stage: String) in
                Metrics.Timer(label: "visionpool_stage_seconds", dimensions: labels + [("stage", stage)], factory: factory)
            }
            stageTimers = Dictionary(uniqueKeysWithValues: Stage.allCases.map { ($0, timer($0.rawValue)) })
            totalTimer = timer("total")
            batchSizes = Recorder(label: "visionpool_batch_size", dimensions: labels, aggregate: true, factory: factory)
            inFlight = Meter(label: "visionpool_in_flight_requests", dimensions: labels, factory: factory)
        }
    }

    private func set(_ model: String, _ version: String) -> ModelSet {
        let key = ModelKey(model: model, version: version)
        return made.sets.withLock { sets in
            if let set = sets[key] { return set }
            let set = ModelSet(model: model, version: version, factory: factory)
            sets[key] = set
            return set
        }
    }

    /// One inference request of `model` (an empty name when the request named none the server
    /// knows) over `wire`, from its start to its end: the in-flight gauge while it runs, then
    /// its outcome (the HTTP status `status` reads from the result, or the one a `ServerError`
    /// carries; 500 for anything else) and how long it took.
    func counting<Result>(
        _ wire: WireProtocol, model: String, version: String = "", status: (Result) -> Int, _ body: () async throws -> Result
    ) async throws -> Result {
        let tally = begin(wire, model: model, version: version)
        do {
            let result = try await body()
            tally.end(status: status(result))
            return result
        } catch {
            tally.end(status: (error as? any HTTPResponseError)?.status.code ?? 500)
            throw error
        }
    }

    /// Starts counting one request, for a path that cannot wrap its request in `counting`
    /// (the channel handler that answers `infer`, whose request ends in a later callback).
    func begin(_ wire: WireProtocol, model: String, version: String = "") -> RequestTally {
        let set = set(model, version)
        set.inFlight.increment()
        return RequestTally(metrics: self, set: set, model: model, version: version, wire: wire, start: .now)
    }

    /// A request counted from its start: in flight until `end` gives its outcome.
    struct RequestTally: Sendable {
        fileprivate let metrics: ServerMetrics
        fileprivate let set: ModelSet
        fileprivate let model: String, version: String
        fileprivate let wire: WireProtocol
        fileprivate let start: ContinuousClock.Instant

        /// The request is over with HTTP status `status` (a gRPC call counts as 200 or its error's status).
        func end(status: Int) {
            set.inFlight.decrement()
            metrics.request(model, version, status: status, seconds: (ContinuousClock.now - start).seconds, protocol: wire, set: set)
        }
    }

    fileprivate func request(_ model: String, _ version: String, status: Int, seconds: Double, protocol wire: WireProtocol, set: ModelSet) {
        let key = CounterKey(model: ModelKey(model: model, version: version), status: status, wire: wire)
        let counter = made.counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Metrics.Counter(
                label: "visionpool_requests_total",
                dimensions: [("model", model), ("version", version), ("outcome", String(status)), ("protocol", wire.rawValue)], factory: factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
        set.totalTimer.recordNanoseconds(Int64(seconds * 1e9))
    }

    /// Time one request spent in each stage it went through.
    func stages(_ times: StageTimes, of model: LoadedModel) {
        let set = set(model.name, model.version)
        for (stage, seconds) in times.seconds { set.stageTimers[stage]?.recordNanoseconds(Int64(seconds * 1e9)) }
    }

    /// Where a model version's batch sizes are recorded.
    func batchSizes(of model: LoadedModel) -> Recorder { set(model.name, model.version).batchSizes }

    /// The Prometheus text, with each loaded model's pool gauges and the bytes requests hold read fresh.
    func scrape(_ models: [LoadedModel], memory: MemoryBudget) -> [UInt8] {
        Gauge(label: "visionpool_inflight_bytes", dimensions: [], factory: factory).record(memory.heldBytes)
        for (model, bytes) in memory.heldBytesByModel where !model.isEmpty {
            Gauge(label: "visionpool_model_inflight_bytes", dimensions: [("model", model)], factory: factory).record(bytes)
        }
        for model in models {
            let status = model.pool.status, labels = [("model", model.name), ("version", model.version)]
            Gauge(label: "visionpool_pool_healthy", dimensions: labels, factory: factory).record(status.canServe ? 1 : 0)
            Gauge(label: "visionpool_workers_ready", dimensions: labels, factory: factory).record(status.workers.filter(\.ready).count)
            Gauge(label: "visionpool_worker_restarts", dimensions: labels, factory: factory).record(status.restarts)
            Gauge(label: "visionpool_queued_batches", dimensions: labels, factory: factory).record(status.queuedBatches)
        }
        return registry.emitToBuffer()
    }
}

/// The metrics made so far, looked up by key: by the labels' values, not a string made of
/// them (building one per request cost an allocation and a copy of each label).
private final class MetricTable: Sendable {
    let sets = Mutex<[ModelKey: ServerMetrics.ModelSet]>([:])
    let counters = Mutex<[CounterKey: Metrics.Counter]>([:])
}

private struct ModelKey: Hashable {
    let model: String
    let version: String
}

private struct CounterKey: Hashable {
    let model: ModelKey
    let status: Int
    let wire: ServerMetrics.WireProtocol
}
