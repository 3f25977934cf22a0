import Hummingbird
import ModelRegistry
import NIOCore

/// `/metrics` in Prometheus's text format.
struct MetricsRoute {
    let registry: ModelRegistry
    let metrics: ServerMetrics
    let memory: MemoryBudget

    func add(to router: Router<ConnectionContext>) {
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.scrape(registry.loaded, memory: memory))))
        }
    }
}
