import Hummingbird
import HummingbirdCore
import ModelRegistry

/// What every route shares: the limits a request is held to.
public struct RouteSettings: Sendable {
    /// The largest request body; past it, 413.
    public var maxBodyBytes: Int
    /// What requests in flight may hold together.
    public var memory: MemoryBudget
    /// A request's deadline when it asks for none, and the most it may ask for.
    public var requestTimeout: Duration

    public init(maxBodyBytes: Int, memory: MemoryBudget, requestTimeout: Duration) {
        self.maxBodyBytes = maxBodyBytes
        self.memory = memory
        self.requestTimeout = requestTimeout
    }
}

/// The server's HTTP side: the KServe v2 / Open Inference Protocol with Triton's repository,
/// configuration and statistics extensions, `/v1/…/classify` for curl, and `/metrics`, for
/// every model `registry` serves. KServe `infer` is answered in each connection's pipeline
/// (`InferChannelHandler`); the router, each feature in its own folder, answers the rest.
/// Tests serve it on a real socket, or drive the router in process for the other routes.
public struct HTTPService {
    public let router: Router<ConnectionContext>
    let infer: KServeInfer
    let accessLog: Bool

    public init(registry: ModelRegistry, settings: RouteSettings, metrics: ServerMetrics, accessLog: Bool = false) {
        let router = Router(context: ConnectionContext.self)
        router.add(middleware: JSONErrorsMiddleware())
        if accessLog { router.add(middleware: LogRequestsMiddleware(.info)) }
        let core = InferenceCore(registry: registry, settings: settings, metrics: metrics)
        let http = HTTPInference(core: core)
        HealthRoutes(registry: registry, core: core).add(to: router)
        MetadataRoutes(registry: registry, core: core).add(to: router)
        RepositoryRoutes(registry: registry).add(to: router)
        ClassifyRoute(http: http).add(to: router)
        MetricsRoute(registry: registry, metrics: metrics, memory: settings.memory).add(to: router)
        self.router = router
        infer = KServeInfer(http: http)
        self.accessLog = accessLog
    }

    /// HTTP/1.1 connections configured as `configuration` says, answering `infer` in their pipeline.
    public func server(_ configuration: HTTP1Channel.Configuration = .init()) -> HTTPServerBuilder {
        HTTPServerBuilder { [infer, accessLog] responder in
            InferenceHTTP1Channel(http1: HTTP1Channel(responder: responder, configuration: configuration), infer: infer, accessLog: accessLog)
        }
    }
}

/// Errors the framework raises itself (no such route, a method the route lacks) answer in
/// the same `{"error": …}` form as the server's own.
struct JSONErrorsMiddleware: RouterMiddleware {
    typealias Context = ConnectionContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            throw ServerError(error.status, error.body ?? "no route for \(request.method) \(request.uri.path)")
        }
    }
}
