import Classification
import Foundation
import Glibc
import Hummingbird
import HummingbirdCore
import InferenceEngines
import Logging
import NIOCore
import ServiceLifecycle
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
    /// One log line per request.
    public var accessLog = false

    public init(
        socketPath: String, socketMode: mode_t = 0o600, tcpHost: String? = nil, tcpPort: Int? = nil, maxBodyBytes: Int = 64 << 20,
        requestTimeout: Duration = .seconds(30), idleTimeout: Duration = .seconds(60)
    ) {
        self.socketPath = socketPath
        self.socketMode = socketMode
        self.tcpHost = tcpHost
        self.tcpPort = tcpPort
        self.maxBodyBytes = maxBodyBytes
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
    }

    /// HTTP/1 with an idle timeout and bounded headers (oversized ones close the connection).
    var http: HTTPServerBuilder {
        .http1(configuration: .init(
            idleTimeout: TimeAmount(idleTimeout), httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 << 10, maxHeaderListSize: 64 << 10, maxHeaderFieldCount: 100)))
    }

    /// `$XDG_RUNTIME_DIR/visionpool.sock`, else `/tmp/visionpool-UID.sock`.
    public static func defaultSocketPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty { return "\(runtime)/visionpool.sock" }
        return "/tmp/visionpool-\(getuid()).sock"
    }
}

/// Why the server could not start.
public struct ServerStartError: Error, CustomStringConvertible {
    public let description: String
}

/// Serves one model over a Unix-domain socket (and optionally loopback TCP): binds first,
/// answers not-ready until the pool is up, and on SIGTERM/SIGINT stops accepting, finishes
/// in-flight requests, stops the workers and removes the socket file.
public enum InferenceServer {
    public static func run(service: ModelService, configuration: ServerConfiguration, logger: Logger) async throws {
        try prepareSocketPath(configuration.socketPath)
        let router = makeRouter(
            service: service, maxBodyBytes: configuration.maxBodyBytes, defaultTimeout: configuration.requestTimeout,
            metrics: ServerMetrics.bootstrap(model: service.name), accessLog: configuration.accessLog)
        var services: [any Service] = [PoolService(classifier: service.classifier, logger: logger)]
        if let host = configuration.tcpHost, let port = configuration.tcpPort {
            services.append(Application(
                router: router, server: configuration.http, configuration: .init(address: .hostname(host, port: port), serverName: "visionpool"),
                logger: logger))
        }
        let path = configuration.socketPath, mode = configuration.socketMode
        // Nothing the server creates is readable by others; the socket then gets its mode.
        umask(0o077)
        let bound = Mutex<ino_t?>(nil)
        let app = Application(
            router: router, server: configuration.http, configuration: .init(address: .unixDomainSocket(path: path), serverName: "visionpool"),
            services: services,
            onServerRunning: { _ in
                if chmod(path, mode) != 0 { logger.error("cannot set mode \(String(mode, radix: 8)) on \(path)") }
                var status = stat()
                if lstat(path, &status) == 0 { bound.withLock { $0 = status.st_ino } }
                logger.info("listening on unix:\(path)\(configuration.tcpPort.map { " and http://\(configuration.tcpHost ?? ""):\($0)" } ?? "")")
            },
            logger: logger)
        defer {
            // Remove the socket file if it is still the one this server made.
            var status = stat()
            if let inode = bound.withLock({ $0 }), lstat(path, &status) == 0, status.st_ino == inode { unlink(path) }
        }
        try await app.runService()
    }

    /// A socket file left by a server that died is removed; one that answers is not.
    static func prepareSocketPath(_ path: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard (status.st_mode & S_IFMT) == S_IFSOCK else {
            throw ServerStartError(description: "\(path) exists and is not a socket; choose another --socket path")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServerStartError(description: "cannot check \(path): socket() failed with errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else { throw ServerStartError(description: "socket path \(path) is too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: path.utf8)
            buffer[path.utf8.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected == 0 { throw ServerStartError(description: "a server is already listening on \(path)") }
        // Only a refused connection proves the file is stale; anything else may be a live server.
        guard errno == ECONNREFUSED else { throw ServerStartError(description: "cannot tell whether \(path) is in use (errno \(errno))") }
        guard unlink(path) == 0 else { throw ServerStartError(description: "cannot remove the stale socket \(path) (errno \(errno))") }
    }
}

/// Starts the worker pool beside the listeners and stops it after they have drained.
struct PoolService: Service {
    let classifier: PoolClassifier
    let logger: Logger

    func run() async throws {
        let start = ContinuousClock.now
        let configuration = classifier.pool.configuration
        try await classifier.start()
        logger.info("""
            pool ready in \(String(format: "%.2f", (ContinuousClock.now - start).seconds)) s: \
            \(configuration.workers) \(configuration.engine.kind.rawValue) workers × \(configuration.threadsPerWorker) threads \
            on CPUs \(classifier.pool.cpuSets), batch ≤ \(configuration.maxBatch)
            """)
        try? await gracefulShutdown()
        await classifier.shutdown()
    }
}
