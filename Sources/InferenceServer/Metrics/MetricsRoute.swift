import Hummingbird
import NIOCore

/// `/metrics` in Prometheus's text format.
struct MetricsRoute<Model: ServedModel> {
    let model: Model
    let metrics: ServerMetrics
    let memory: MemoryBudget

    func add(to router: Router<ConnectionContext>) {
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.scrape(model.poolStatus, heldBytes: memory.heldBytes))))
        }
    }
}

/// Counts every inference request over HTTP (the POSTs; health checks and metadata are not)
/// by outcome, times it, and keeps the in-flight gauge, as gRPC's service does for its calls.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = ConnectionContext
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post else { return try await next(request, context) }
        return try await metrics.counting(.http, status: { $0.status.code }) { try await next(request, context) }
    }
}
