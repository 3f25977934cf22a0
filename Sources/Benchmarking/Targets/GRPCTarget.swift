import Classification
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import KServeGRPC

/// A KServe v2 server over gRPC (`inference.GRPCInferenceService`), on a Unix-domain socket or
/// at HOST:PORT, sent what `HTTPTarget` sends over HTTP so the two protocols are measured
/// the same way: images as one BYTES element asking for the top five classes, tensors as
/// raw FP32. Stage times come from the reply's `server-timing` metadata.
public final class GRPCTarget: ServerTarget {
    public let imagesPerRequest = 1
    public let address: String
    public let model: String
    /// The model's input shape for one sample, from its metadata.
    public let sampleShape: [Int]
    private let client: GRPCClient<HTTP2ClientTransport.Posix>
    private let service: Inference_GRPCInferenceService.Client<HTTP2ClientTransport.Posix>
    private let connections: Task<Void, any Error>
    private let inputName: String
    private let outputName: String
    private let serverPID: Int32?
    private let timeout: Duration

    /// Connects, waits up to `readyWithin` for the server to say it is ready, and reads the
    /// model's input and output names from its metadata.
    public static func connect(
        socketPath: String? = nil, hostAndPort: String? = nil, model: String, readyWithin: Duration = .seconds(60), timeout: Duration = .seconds(60)
    ) async throws -> GRPCTarget {
        let target: any ResolvableTarget
        let address: String
        if let socketPath {
            target = .unixDomainSocket(path: socketPath)
            address = "unix:\(socketPath)"
        } else if let hostAndPort, let colon = hostAndPort.lastIndex(of: ":"), let port = Int(hostAndPort[hostAndPort.index(after: colon)...]) {
            let host = String(hostAndPort[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            target = host.contains(":") ? .ipv6(address: host, port: port) : .ipv4(address: host == "localhost" ? "127.0.0.1" : host, port: port)
            address = hostAndPort
        } else {
            throw HTTPTargetError("give a gRPC socket path or HOST:PORT")
        }
        let transport = try HTTP2ClientTransport.Posix(
            target: target, transportSecurity: .plaintext, config: .defaults { $0.http2.maxFrameSize = 1 << 20 })
        let client = GRPCClient(transport: transport)
        let connections = Task { try await client.runConnections() }
        let service = Inference_GRPCInferenceService.Client(wrapping: client)
        do {
            try await waitUntilReady(service, address: address, within: readyWithin)
            let metadata = try await service.modelMetadata(.with { $0.name = model })
            guard let input = metadata.inputs.first, let output = metadata.outputs.first else {
                throw HTTPTargetError("the metadata of model \(model) names no input or output")
            }
            return GRPCTarget(
                client: client, service: service, connections: connections, address: address, model: model, inputName: input.name,
                outputName: output.name, sampleShape: input.shape.map(Int.init).filter { $0 >= 0 },
                serverPID: socketPath.flatMap(ProcessTable.peerPID(socketPath:)), timeout: timeout)
        } catch {
            client.beginGracefulShutdown()
            connections.cancel()
            throw error
        }
    }

    private init(
        client: GRPCClient<HTTP2ClientTransport.Posix>, service: Inference_GRPCInferenceService.Client<HTTP2ClientTransport.Posix>,
        connections: Task<Void, any Error>, address: String, model: String, inputName: String, outputName: String, sampleShape: [Int],
        serverPID: Int32?, timeout: Duration
    ) {
        self.client = client
        self.service = service
        self.connections = connections
        self.address = address
        self.model = model
        self.inputName = inputName
        self.outputName = outputName
        self.sampleShape = sampleShape
        self.serverPID = serverPID
        self.timeout = timeout
    }

    public func close() async {
        client.beginGracefulShutdown()
        _ = await connections.result
    }

    public func send(_ items: [WorkloadItem]) async throws -> StageTimes {
        var request = Inference_ModelInferRequest()
        request.modelName = model
        var input = Inference_ModelInferRequest.InferInputTensor()
        input.name = inputName
        var output = Inference_ModelInferRequest.InferRequestedOutputTensor()
        output.name = outputName
        switch items[0].payload {
        case .image(let data):
            input.datatype = "BYTES"
            input.shape = [1]
            var element = Data(capacity: data.count + 4)
            withUnsafeBytes(of: UInt32(data.count).littleEndian) { element.append(contentsOf: $0) }
            element.append(data)
            request.rawInputContents = [element]
            output.parameters["classification"] = .with { $0.int64Param = 5 }
        case .tensor(let values):
            input.datatype = "FP32"
            input.shape = ([1] + sampleShape).map(Int64.init)
            request.rawInputContents = [values.withUnsafeBytes { Data($0) }]
        case .floatBytes(let data):
            input.datatype = "FP32"
            input.shape = ([1] + sampleShape).map(Int64.init)
            request.rawInputContents = [data]
        }
        request.inputs = [input]
        request.outputs = [output]
        var options = CallOptions.defaults
        options.timeout = timeout
        return try await service.modelInfer(request: ClientRequest(message: request), options: options) { response in
            _ = try response.message
            return StageTimes(serverTiming: response.metadata[stringValues: "server-timing"].first { _ in true } ?? "")
        }
    }

    public func servingProcesses() -> ServingProcesses {
        guard let serverPID else { return ServingProcesses(front: nil, workers: []) }
        return ServingProcesses(front: serverPID, workers: ProcessTable.children(of: serverPID))
    }

    private static func waitUntilReady(
        _ service: Inference_GRPCInferenceService.Client<HTTP2ClientTransport.Posix>, address: String, within limit: Duration
    ) async throws {
        let deadline = ContinuousClock.now + limit
        var last = "no answer"
        while ContinuousClock.now < deadline {
            do {
                var options = CallOptions.defaults
                options.timeout = .seconds(5)
                if try await service.serverReady(.init(), options: options).ready { return }
                last = "not ready"
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw HTTPTargetError("the gRPC server at \(address) was not ready within \(limit) (\(last))")
    }
}
