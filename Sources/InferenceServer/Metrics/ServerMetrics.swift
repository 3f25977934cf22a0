import Classification
import Hummingbird
import Metrics
import Prometheus
import Synchronization
import WorkerPool

/// What the server counts and times, exported in Prometheus's text format at `/metrics`.
public struct ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// Every metric is made through this factory, not the process-wide one, so that each
    /// server (and each in-process test of the routes) has a registry of its own.
    private let factory: PrometheusMetricsFactory
    let model: String
    private let inFlight: Meter
    /// Made once: looking a metric up in the registry takes a lock, and these are per request.
    private let stageTimers: [String: Metrics.Timer]
    private let batchSizes: Recorder
    /// `visionpool_requests_total` by outcome and protocol, each made on its first request.
    private let requestCounters = CounterTable()

    /// The metrics of a server of `model`, in a registry of their own.
    public init(model: String) {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        factory.valueHistogramBuckets = ["visionpool_batch_size": [1, 2, 4, 8, 16]]
        self.factory = factory
        self.model = model
        inFlight = Meter(label: "visionpool_in_flight_requests", dimensions: [("model", model)], factory: factory)
        stageTimers = Dictionary(uniqueKeysWithValues: (Stage.allCases.map(\.rawValue) + ["total"]).map {
            ($0, Metrics.Timer(label: "visionpool_stage_seconds", dimensions: [("model", model), ("stage", $0)], factory: factory))
        })
        batchSizes = Recorder(label: "visionpool_batch_size", dimensions: [("model", model)], aggregate: true, factory: factory)
    }

    /// The protocol a request came in by.
    enum WireProtocol: String {
        case http, grpc
    }

    /// One inference request over `wire` from its start to its end: the in-flight gauge while
    /// it runs, then its outcome (the HTTP status `status` reads from the result, or the one a
    /// `ServerError` carries; 500 for anything else) and how long it took.
    func counting<Result>(_ wire: WireProtocol, status: (Result) -> Int, _ body: () async throws -> Result) async throws -> Result {
        let start = ContinuousClock.now
        inFlight.increment()
        defer { inFlight.decrement() }
        do {
            let result = try await body()
            request(status: status(result), seconds: (ContinuousClock.now - start).seconds, protocol: wire)
            return result
        } catch {
            request(status: (error as? any HTTPResponseError)?.status.code ?? 500, seconds: (ContinuousClock.now - start).seconds, protocol: wire)
            throw error
        }
    }

    private func request(status: Int, seconds: Double, protocol wire: WireProtocol) {
        let key = "\(status) \(wire.rawValue)"
        let counter = requestCounters.counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Metrics.Counter(
                label: "visionpool_requests_total", dimensions: [("model", model), ("outcome", String(status)), ("protocol", wire.rawValue)],
                factory: factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
        stageTimers["total"]?.recordNanoseconds(Int64(seconds * 1e9))
    }

    /// Time one request spent in each stage it went through.
    func stages(_ times: StageTimes) {
        for (stage, seconds) in times.seconds { stageTimers[stage.rawValue]?.recordNanoseconds(Int64(seconds * 1e9)) }
    }

    func batch(size: Int) {
        batchSizes.record(size)
    }


    /// The Prometheus text, with the pool's gauges and the bytes requests hold read fresh.
    func scrape(_ status: PoolStatus, heldBytes: Int) -> [UInt8] {
        let dimensions = [("model", model)]
        Gauge(label: "visionpool_inflight_bytes", dimensions: dimensions, factory: factory).record(heldBytes)
        Gauge(label: "visionpool_pool_healthy", dimensions: dimensions, factory: factory).record(status.canServe ? 1 : 0)
        Gauge(label: "visionpool_workers_ready", dimensions: dimensions, factory: factory).record(status.workers.filter(\.ready).count)
        Gauge(label: "visionpool_worker_restarts", dimensions: dimensions, factory: factory).record(status.restarts)
        Gauge(label: "visionpool_queued_batches", dimensions: dimensions, factory: factory).record(status.queuedBatches)
        return registry.emitToBuffer()
    }
}

/// Counters made once and looked up by key after: creating one costs a registry lookup under a lock.
private final class CounterTable: Sendable {
    let counters = Mutex<[String: Metrics.Counter]>([:])
}
