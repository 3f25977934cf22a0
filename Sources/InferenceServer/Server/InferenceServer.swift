import CLinuxShims
import Classification
import Foundation
import Glibc
import Hummingbird
import HummingbirdCore
import Logging
import ModelRegistry
import NIOCore
import ServiceLifecycle
import UnixSignals
import Synchronization

/// Where and how the server listens.
public struct ServerConfiguration: Sendable {
    public var socketPath: String
    /// Permissions of the socket file: owner only unless asked otherwise.
    public var socketMode: mode_t
    /// An optional TCP listener for clients that speak only TCP.
    public var tcpHost: String?
    public var tcpPort: Int?
    public var maxBodyBytes: Int
    /// How long a request may take unless it asks for less (or more).
    public var requestTimeout: Duration
    /// Connections idle this long are closed.
    public var idleTimeout: Duration
    /// A request's body must have arrived this long after its head, or its connection is closed.
    public var bodyTimeout: Duration
    /// After the first SIGTERM/SIGINT, how long in-flight requests may take before the
    /// server stops anyway (Kubernetes sends SIGKILL 30 s after SIGTERM by default).
    public var gracefulTimeout: Duration = .seconds(20)
    /// The KServe v2 gRPC listeners (a Unix-domain socket, TCP), if any.
    public var grpc: [GRPCAddress] = []
    /// How long after the first signal new requests are still taken, readiness failing,
    /// before the listeners close: the time a load balancer needs to stop sending.
    public var shutdownDelay: Duration = .zero
    /// How often a repository served with `--model-control poll` is read again for changes.
    public var repositoryPollInterval: Duration?
    /// Bytes all requests in flight may hold in the front (bodies, parsed tensors, decoding);
    /// nil: `MemoryBudget.defaultLimit`.
    public var maxInflightBytes: Int?
    /// One log line per request.
    public var accessLog = false
    /// Allow the socket in a folder others may write to (where another user could put their
    /// own socket at this path first, or swap it later).
    public var allowSharedDirectory = false

    public init(
        socketPath: String, socketMode: mode_t = 0o600, tcpHost: String? = nil, tcpPort: Int? = nil, maxBodyBytes: Int = 64 << 20,
        requestTimeout: Duration = .seconds(30), idleTimeout: Duration = .seconds(60), bodyTimeout: Duration = .seconds(30)
    ) {
        self.socketPath = socketPath
        self.socketMode = socketMode
        self.tcpHost = tcpHost
        self.tcpPort = tcpPort
        self.maxBodyBytes = maxBodyBytes
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
        self.bodyTimeout = bodyTimeout
    }

    /// HTTP/1 with an idle timeout, a deadline for each body, and bounded headers (oversized
    /// ones close the connection).
    var http1: HTTP1Channel.Configuration {
        let bodyTimeout = TimeAmount(bodyTimeout)
        return .init(
            additionalChannelHandlers: [LargeReads(), BodyDeadlineHandler(timeout: bodyTimeout)], idleTimeout: TimeAmount(idleTimeout),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 << 10, maxHeaderListSize: 64 << 10, maxHeaderFieldCount: 100))
    }

    /// `$XDG_RUNTIME_DIR/visionpool.sock`, else `visionpool.sock` in a private folder
    /// `/tmp/visionpool-UID` (made 0700 if missing): never a predictable name in a folder
    /// every user may write to.
    public static func defaultSocketPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty { return "\(runtime)/visionpool.sock" }
        return "\(privateFallbackDirectory)/visionpool.sock"
    }

    static var privateFallbackDirectory: String { "/tmp/visionpool-\(getuid())" }
}

/// Why the server could not start.
public struct ServerStartError: Error, CustomStringConvertible {
    public let description: String
}

/// Serves the models of a registry over a Unix-domain socket (and optionally TCP and gRPC):
/// binds first, answers not-ready until the models are loaded, and on SIGTERM/SIGINT stops
/// accepting, finishes in-flight requests, stops the workers and removes the socket file.
public enum InferenceServer {
    public static func run(registry: ModelRegistry, configuration: ServerConfiguration, logger: Logger) async throws {
        let socketPaths = [configuration.socketPath] + configuration.grpc.compactMap { address -> String? in
            if case .unixDomainSocket(let path) = address { path } else { nil }
        }
        guard Set(socketPaths).count == socketPaths.count else { throw ServerStartError(description: "the HTTP and gRPC sockets need different paths") }
        var locks: [Int32] = []
        defer {
            // Removed while still held, so no other server can have locked this same file.
            for (path, lock) in zip(socketPaths, locks) {
                unlink(path + ".lock")
                close(lock)
            }
        }
        for path in socketPaths {
            try checkSocketDirectory(of: path, allowShared: configuration.allowSharedDirectory)
            locks.append(try lockSocketPath(path))
            try prepareSocketPath(path)
        }
        // A body and what parsing it may make: floats from JSON numbers of at least 2 bytes each, or decoded base64.
        let largestRequest = 3 * configuration.maxBodyBytes
        let memory = MemoryBudget(limit: configuration.maxInflightBytes ?? MemoryBudget.defaultLimit(largestRequest: largestRequest))
        logger.info("requests in flight may hold \(memory.limit >> 20) MiB (--max-inflight-bytes \(memory.limit))")
        let settings = RouteSettings(maxBodyBytes: configuration.maxBodyBytes, memory: memory, requestTimeout: configuration.requestTimeout)
        let metrics = ServerMetrics()
        let http = HTTPService(registry: registry, settings: settings, metrics: metrics, accessLog: configuration.accessLog)
        let stop = StopRequest(gracePeriod: configuration.gracefulTimeout)
        var services: [any Service] = [RegistryService(registry: registry, stop: stop, pollInterval: configuration.repositoryPollInterval, logger: logger)]
        if let host = configuration.tcpHost, let port = configuration.tcpPort {
            services.append(Application(
                router: http.router, server: http.server(configuration.http1), configuration: .init(address: .hostname(host, port: port), serverName: "visionpool"),
                logger: logger))
        }
        let path = configuration.socketPath, mode = configuration.socketMode
        // Nothing the server creates is readable by others; the socket then gets its mode.
        umask(0o077)
        let sockets = SocketFiles(mode: mode, logger: logger)
        services.append(Application(
            router: http.router, server: http.server(configuration.http1), configuration: .init(address: .unixDomainSocket(path: path), serverName: "visionpool"),
            onServerRunning: { _ in
                sockets.claim(path)
                logger.info("listening on unix:\(path)\(configuration.tcpPort.map { " and http://\(configuration.tcpHost ?? ""):\($0)" } ?? "")")
            },
            logger: logger))
        let grpcService = GRPCInferenceService(core: InferenceCore(registry: registry, settings: settings, metrics: metrics), logger: logger)
        for address in configuration.grpc {
            services.append(GRPCListener(address: address, service: grpcService, maxMessageBytes: configuration.maxBodyBytes, logger: logger) {
                if case .unixDomainSocket(let path) = address { sockets.claim(path) }
            })
        }
        defer { sockets.removeAll() }
        // Services stop in reverse order: the listeners drain first, while the pool still serves.
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger))
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let (stopBegan, beginStop) = AsyncStream.makeStream(of: Void.self)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // gunicorn's arbiter: the first signal stops gracefully, a second one (or the grace
            // period running out) stops at once.
            tasks.addTask {
                var count = 0
                for await signal in signals {
                    count += 1
                    guard count == 1 else { throw ServerStopError.forced("a second signal (\(signal))") }
                    logger.info("\(signal): stopping gracefully within \(configuration.gracefulTimeout); a second signal stops at once")
                    registry.beginDraining()
                    stop.begin()
                    beginStop.yield()
                }
            }
            // Readiness fails at once; new requests are still taken for the shutdown delay,
            // then the listeners close and drain. The grace period covers both.
            tasks.addTask {
                for await _ in stopBegan {
                    if configuration.shutdownDelay > .zero {
                        logger.info("taking new requests for \(configuration.shutdownDelay) more while readiness fails")
                        try await Task.sleep(for: configuration.shutdownDelay)
                    }
                    await group.triggerGracefulShutdown()
                    try await Task.sleep(for: configuration.gracefulTimeout - configuration.shutdownDelay)
                    throw ServerStopError.forced("the \(configuration.gracefulTimeout) graceful timeout")
                }
            }
            // The group ends by itself after a graceful stop; a forced stop cancels it.
            do {
                try await tasks.next()
                tasks.cancelAll()
            } catch {
                if error is ServerStopError { logger.warning("\(error): requests still running are cut off and the workers killed") }
                stop.force()
                tasks.cancelAll()
                while (try? await tasks.next()) != nil {}
                throw error
            }
        }
    }

    /// The socket's folder must belong to this user (or root) and be writable by nobody else,
    /// unless `allowShared`: otherwise another user could be listening at the path first, or
    /// replace the socket later. The private fallback folder is made here if missing.
    static func checkSocketDirectory(of path: String, allowShared: Bool) throws {
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        if directory == ServerConfiguration.privateFallbackDirectory, mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw ServerStartError(description: "cannot make the socket folder \(directory) (errno \(errno))")
        }
        var status = stat()
        guard stat(directory, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR else {
            throw ServerStartError(description: "the socket's folder \(directory) does not exist")
        }
        guard !allowShared else { return }
        guard status.st_uid == getuid() || status.st_uid == 0 else {
            throw ServerStartError(description: """
                the socket's folder \(directory) belongs to another user (uid \(status.st_uid)); \
                choose a folder of your own, or pass --allow-shared-socket-dir
                """)
        }
        guard status.st_mode & (S_IWGRP | S_IWOTH) == 0 else {
            throw ServerStartError(description: """
                the socket's folder \(directory) is writable by other users (mode \(String(status.st_mode & 0o7777, radix: 8))), \
                who could stand in for this server; choose a private folder (the default is), or pass --allow-shared-socket-dir
                """)
        }
    }

    /// Holds `PATH.lock` (`flock`) for the server's life, so two servers started at once on
    /// one path cannot both decide the socket is stale. Returns the descriptor to close at exit.
    static func lockSocketPath(_ path: String) throws -> Int32 {
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw ServerStartError(description: "cannot open \(lockPath) (errno \(errno))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw ServerStartError(description: "another visionpool server holds \(lockPath): it is starting or serving on \(path)")
        }
        return fd
    }

    /// A socket file left by a server that died is removed; one that answers is not, and
    /// nothing that is not a socket is touched.
    static func prepareSocketPath(_ path: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard (status.st_mode & S_IFMT) != S_IFLNK else {
            throw ServerStartError(description: "\(path) is a symbolic link; a socket path must name the socket itself")
        }
        guard (status.st_mode & S_IFMT) == S_IFSOCK else {
            throw ServerStartError(description: "\(path) exists and is not a socket; choose another --socket path")
        }
        let fd = CLinuxShims_connect_unix(path)
        if fd >= 0 {
            close(fd)
            throw ServerStartError(description: "a server is already listening on \(path)")
        }
        guard errno != ENAMETOOLONG else { throw ServerStartError(description: "socket path \(path) is too long") }
        // Only a refused connection proves the file is stale; anything else may be a live server.
        guard errno == ECONNREFUSED else { throw ServerStartError(description: "cannot tell whether \(path) is in use (errno \(errno))") }
        guard unlink(path) == 0 else { throw ServerStartError(description: "cannot remove the stale socket \(path) (errno \(errno))") }
    }
}

/// How the server was stopped when it was not a clean, graceful stop.
public enum ServerStopError: Error, CustomStringConvertible {
    case forced(String)

    public var description: String {
        switch self {
        case .forced(let why): "stopped forcibly by \(why)"
        }
    }
}

/// When the stop began, and whether it must be immediate: shared by the signal handler and
/// the pool's service.
final class StopRequest: Sendable {
    private let deadline = Mutex<ContinuousClock.Instant?>(nil)
    private let gracePeriod: Duration
    private let forcedHandlers = Mutex<[@Sendable () -> Void]>([])

    init(gracePeriod: Duration) {
        self.gracePeriod = gracePeriod
    }

    func begin() {
        deadline.withLock { $0 = $0 ?? .now + gracePeriod }
    }

    func force() {
        deadline.withLock { $0 = .now }
        for handler in forcedHandlers.withLock({ $0 }) { handler() }
    }

    /// What is left of the grace period (all of it if no signal started the stop).
    var remaining: Duration {
        guard let deadline = deadline.withLock({ $0 }) else { return gracePeriod }
        return max(.zero, deadline - .now)
    }

    func onForce(_ handler: @escaping @Sendable () -> Void) {
        forcedHandlers.withLock { $0.append(handler) }
    }
}

/// Loads the registry's models beside the listeners (and watches the repository, with
/// `--model-control poll`), and stops every pool after the listeners have drained, within what
/// is left of the grace period (at once if the stop is forced).
struct RegistryService: Service {
    let registry: ModelRegistry
    let stop: StopRequest
    /// How often a polled repository is read again; nil: not watched.
    let pollInterval: Duration?
    let logger: Logger

    func run() async throws {
        let start = ContinuousClock.now
        stop.onForce { Task { await registry.stopAll(gracePeriod: .zero) } }
        await registry.loadAtStart()
        logger.info("models ready in \(String(format: "%.2f", (ContinuousClock.now - start).seconds)) s")
        if let pollInterval, registry.control == .poll {
            try? await cancelWhenGracefulShutdown { await registry.watch(every: pollInterval) }
        } else {
            try? await gracefulShutdown()
        }
        await registry.stopAll(gracePeriod: Task.isCancelled ? .zero : stop.remaining)
        logger.info("worker pools stopped")
    }
}

/// The socket files this server made: each gets the socket mode once bound, and is removed at
/// exit if it is still the same file (by inode), never a successor's.
final class SocketFiles: Sendable {
    private let mode: mode_t
    private let logger: Logger
    private let made = Mutex<[String: ino_t]>([:])

    init(mode: mode_t, logger: Logger) {
        self.mode = mode
        self.logger = logger
    }

    func claim(_ path: String) {
        if chmod(path, mode) != 0 { logger.error("cannot set mode \(String(mode, radix: 8)) on \(path)") }
        var status = stat()
        if lstat(path, &status) == 0 { made.withLock { $0[path] = status.st_ino } }
    }

    func removeAll() {
        for (path, inode) in made.withLock({ $0 }) {
            var status = stat()
            if lstat(path, &status) == 0, status.st_ino == inode { unlink(path) }
        }
    }
}
