import Metrics
import Prometheus
import WorkerPool

/// What the server counts and times, exported in Prometheus's text format at `/metrics`.
public struct ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let model: String
    private let inFlight: Meter
    /// Made once: looking a metric up in the registry takes a lock, and these are per request.
    private let stages: [String: Metrics.Timer]
    private let batchSizes: Recorder

    /// Bootstraps swift-metrics with a Prometheus registry (once per process) for `model`.
    public static func bootstrap(model: String) -> ServerMetrics {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let stages: [Duration] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        factory.defaultDurationHistogramBuckets = stages
        factory.valueHistogramBuckets = ["visionpool_batch_size": [1, 2, 4, 8, 16]]
        MetricsSystem.bootstrap(factory)
        return ServerMetrics(
            registry: registry, model: model, inFlight: Meter(label: "visionpool_in_flight_requests", dimensions: [("model", model)]),
            stages: Dictionary(uniqueKeysWithValues: ["queue", "decode", "inference", "total"].map {
                ($0, Metrics.Timer(label: "visionpool_stage_seconds", dimensions: [("model", model), ("stage", $0)]))
            }),
            batchSizes: Recorder(label: "visionpool_batch_size", dimensions: [("model", model)], aggregate: true))
    }

    /// One finished request: its outcome (the status code) and how long it took.
    func request(status: Int, seconds: Double) {
        Counter(label: "visionpool_requests_total", dimensions: [("model", model), ("outcome", String(status))]).increment()
        stage("total", seconds: seconds)
    }

    /// Time spent in one stage: queue, decode, inference, total.
    func stage(_ name: String, seconds: Double) {
        stages[name]?.recordNanoseconds(Int64(seconds * 1e9))
    }

    func batch(size: Int) {
        batchSizes.record(size)
    }

    func began() { inFlight.increment() }
    func ended() { inFlight.decrement() }

    /// The Prometheus text, with the pool's gauges and the bytes requests hold read fresh.
    func scrape(_ status: PoolStatus, heldBytes: Int) -> [UInt8] {
        let dimensions = [("model", model)]
        Gauge(label: "visionpool_inflight_bytes", dimensions: dimensions).record(heldBytes)
        Gauge(label: "visionpool_pool_healthy", dimensions: dimensions).record(status.canServe ? 1 : 0)
        Gauge(label: "visionpool_workers_ready", dimensions: dimensions).record(status.workers.filter(\.ready).count)
        Gauge(label: "visionpool_worker_restarts", dimensions: dimensions).record(status.restarts)
        Gauge(label: "visionpool_queued_batches", dimensions: dimensions).record(status.queuedBatches)
        return registry.emitToBuffer()
    }
}
