import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Glibc
import Logging
import ServiceLifecycle

/// Where a gRPC listener binds: a Unix-domain socket (checked and locked like the HTTP one)
/// or a TCP address.
public enum GRPCAddress: Sendable, CustomStringConvertible {
    case unixDomainSocket(path: String)
    case tcp(host: String, port: Int)

    public var description: String {
        switch self {
        case .unixDomainSocket(let path): "unix:\(path)"
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    var socketAddress: GRPCNIOTransportCore.SocketAddress {
        switch self {
        case .unixDomainSocket(let path): return .unixDomainSocket(path: path)
        case .tcp(let host, let port):
            if host == "localhost" { return .ipv4(host: "127.0.0.1", port: port) }
            return host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
        }
    }
}

/// One gRPC server (HTTP/2, plaintext) in the server's service group: it stops taking new
/// calls on graceful shutdown and finishes the ones it has, like the HTTP listeners.
struct GRPCListener: Service {
    let address: GRPCAddress
    let service: any RegistrableRPCService
    let maxMessageBytes: Int
    let logger: Logger
    /// Called once the listener is bound (the socket's mode is set then).
    let onListening: @Sendable () -> Void

    func run() async throws {
        let transport = HTTP2ServerTransport.Posix(
            address: address.socketAddress, transportSecurity: .plaintext,
            config: .defaults { $0.rpc.maxRequestPayloadSize = maxMessageBytes })
        let server = GRPCServer(transport: transport, services: [service, TritonOnlyCalls()])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    do {
                        try await server.serve()
                    } catch {
                        throw ServerStartError(description: "cannot serve gRPC on \(address): \(error)")
                    }
                }
                // Not bound: serve() throws why (the address in use, a path too long).
                guard (try? await transport.listeningAddress) != nil else { return }
                onListening()
                logger.info("gRPC listening on \(address)")
            }
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}

/// The calls of Triton's `inference.GRPCInferenceService` visionpool does not serve (shared
/// memory, tracing, logging, streaming): each answers UNIMPLEMENTED naming itself, where an
/// unknown method would get gRPC's generic "isn't implemented".
struct TritonOnlyCalls: RegistrableRPCService {
    static let methods = [
        "SystemSharedMemoryStatus", "SystemSharedMemoryRegister", "SystemSharedMemoryUnregister", "CudaSharedMemoryStatus",
        "CudaSharedMemoryRegister", "CudaSharedMemoryUnregister", "TraceSetting", "LogSettings", "ModelStreamInfer",
    ]

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        for method in Self.methods {
            router.registerHandler(
                forMethod: MethodDescriptor(fullyQualifiedService: "inference.GRPCInferenceService", method: method),
                deserializer: IgnoredMessage(), serializer: IgnoredMessage()
            ) { _, _ in
                throw RPCError(
                    code: .unimplemented,
                    message: "inference.GRPCInferenceService/\(method) is a Triton call visionpool does not implement; it serves KServe's six calls and Triton's model configuration, statistics and repository")
            }
        }
    }
}

/// A message nobody reads: the unimplemented calls neither parse their requests nor send replies.
struct IgnoredMessage: MessageSerializer, MessageDeserializer {
    typealias Message = Void

    func serialize<Bytes: GRPCContiguousBytes>(_ message: Void) throws -> Bytes { Bytes(repeating: 0, count: 0) }
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws {}
}
