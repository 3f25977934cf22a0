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

/// Counts every inference request (the POSTs; health checks and metadata are not) by outcome,
/// times it, and keeps the in-flight gauge.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = ConnectionContext
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post else { return try await next(request, context) }
        let start = ContinuousClock.now
        metrics.began()
        defer { metrics.ended() }
        do {
            let response = try await next(request, context)
            metrics.request(status: response.status.code, seconds: (ContinuousClock.now - start).seconds)
            return response
        } catch let error as HTTPResponseError {
            metrics.request(status: error.status.code, seconds: (ContinuousClock.now - start).seconds)
            throw error
        } catch {
            metrics.request(status: 500, seconds: (ContinuousClock.now - start).seconds)
            throw error
        }
    }
}
