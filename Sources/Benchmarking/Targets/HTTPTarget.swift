import Classification
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A KServe v2 (Open Inference Protocol) server, reached over a Unix socket or a URL:
/// `visionpool serve`, or anything else that speaks the protocol. Images go as `BYTES`
/// through the binary tensor data extension with the classification extension (the
/// server decodes them); tensors go as binary FP32. Stage times come from the server's
/// `Server-Timing` header when it sends one.
public final class HTTPTarget: ServerTarget {
    public let imagesPerRequest = 1
    public let address: String
    public let model: String
    private let client: HTTPClient
    private let inferURL: String
    private let inputName: String
    private let outputName: String
    /// The model's input shape for one sample, from its metadata.
    public let sampleShape: [Int]
    /// The server process, when it is on this machine behind a Unix socket.
    private let serverPID: Int32?
    private let timeout: TimeAmount

    /// Connects, waits up to `readyWithin` for the server to say it is ready, and reads the
    /// model's input and output names from its metadata.
    public static func connect(
        socketPath: String? = nil, url: String? = nil, model: String, connections: Int, readyWithin: Duration = .seconds(60),
        timeout: Duration = .seconds(60)
    ) async throws -> HTTPTarget {
        let base: String
        var serverPID: Int32?
        if let socketPath {
            guard let socketURL = URL(httpURLWithSocketPath: socketPath, uri: "") else {
                throw HTTPTargetError("\(socketPath) cannot be a socket address")
            }
            base = socketURL.absoluteString
            serverPID = ProcessTable.peerPID(socketPath: socketPath)
            guard serverPID != nil else { throw HTTPTargetError("nothing answers on \(socketPath): start `visionpool serve --socket \(socketPath)`") }
        } else if let url {
            base = url.hasSuffix("/") ? String(url.dropLast()) : url
        } else {
            throw HTTPTargetError("give a socket path or a URL")
        }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, connections))
        configuration.decompression = .disabled
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            try await waitUntilReady(client, base: base, within: readyWithin)
            let metadata = try await getJSON(client, "\(base)/v2/models/\(model)")
            guard let inputs = metadata["inputs"] as? [[String: Any]], let input = inputs.first, let inputName = input["name"] as? String,
                  let outputs = metadata["outputs"] as? [[String: Any]], let outputName = outputs.first?["name"] as? String
            else { throw HTTPTargetError("the metadata of model \(model) names no input or output") }
            let shape = (input["shape"] as? [Int]) ?? []
            return HTTPTarget(
                client: client, address: socketPath ?? base, model: model, inferURL: "\(base)/v2/models/\(model)/infer", inputName: inputName,
                outputName: outputName, sampleShape: Array(shape.drop { $0 < 0 }), serverPID: serverPID, timeout: TimeAmount(timeout))
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private init(
        client: HTTPClient, address: String, model: String, inferURL: String, inputName: String, outputName: String, sampleShape: [Int],
        serverPID: Int32?, timeout: TimeAmount
    ) {
        self.client = client
        self.address = address
        self.model = model
        self.inferURL = inferURL
        self.inputName = inputName
        self.outputName = outputName
        self.sampleShape = sampleShape
        self.serverPID = serverPID
        self.timeout = timeout
    }

    public func close() async {
        try? await client.shutdown()
    }

    public func send(_ items: [WorkloadItem]) async throws -> StageTimes {
        var request = HTTPClientRequest(url: inferURL)
        request.method = .POST
        let header = header(for: items[0])
        var buffer = ByteBuffer()
        buffer.writeBytes(header)
        switch items[0].payload {
        case .image(let data):
            buffer.writeInteger(UInt32(data.count), endianness: .little)
            buffer.writeBytes(data)
        case .tensor(let values):
            _ = values.withUnsafeBytes { buffer.writeBytes($0) }
        case .floatBytes(let data):
            buffer.writeBytes(data)
        }
        request.headers.add(name: "Inference-Header-Content-Length", value: String(header.count))
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        request.body = .bytes(buffer)
        let response = try await client.execute(request, timeout: timeout)
        let answer = try await response.body.collect(upTo: 16 << 20)
        guard response.status == .ok else {
            throw HTTPTargetError("HTTP \(response.status.code): \(String(buffer: answer).prefix(200))")
        }
        return StageTimes(serverTiming: response.headers.first(name: "Server-Timing") ?? "")
    }

    /// The JSON part of an inference request; the binary payload follows it. Images ask for
    /// the top five classes (what a client wants back); tensors for the raw scores.
    private func header(for item: WorkloadItem) -> [UInt8] {
        let input: [String: Any]
        let output: [String: Any]
        switch item.payload {
        case .image(let data):
            input = ["name": inputName, "shape": [1], "datatype": "BYTES", "parameters": ["binary_data_size": data.count + 4]]
            output = ["name": outputName, "parameters": ["classification": 5]]
        case .tensor, .floatBytes:
            input = [
                "name": inputName, "shape": [1] + sampleShape, "datatype": "FP32",
                "parameters": ["binary_data_size": item.payload.bytes],
            ]
            output = ["name": outputName, "parameters": ["binary_data": true]]
        }
        // Names come from the server's metadata; serialising (rather than pasting) keeps any quotes in them harmless.
        return Array(try! JSONSerialization.data(withJSONObject: ["inputs": [input], "outputs": [output]]))
    }

    public func servingProcesses() -> ServingProcesses {
        guard let serverPID else { return ServingProcesses(front: nil, workers: []) }
        return ServingProcesses(front: serverPID, workers: ProcessTable.children(of: serverPID))
    }

    private static func waitUntilReady(_ client: HTTPClient, base: String, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        var last = "no answer"
        while ContinuousClock.now < deadline {
            do {
                let response = try await client.execute(HTTPClientRequest(url: "\(base)/v2/health/ready"), timeout: .seconds(5))
                _ = try await response.body.collect(upTo: 1 << 20)
                if response.status == .ok { return }
                last = "HTTP \(response.status.code)"
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw HTTPTargetError("the server at \(base) was not ready within \(limit) (\(last))")
    }

    private static func getJSON(_ client: HTTPClient, _ url: String) async throws -> [String: Any] {
        let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 4 << 20)
        guard response.status == .ok else { throw HTTPTargetError("GET \(url): HTTP \(response.status.code): \(String(buffer: body).prefix(200))") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
            throw HTTPTargetError("GET \(url) did not return a JSON object")
        }
        return object
    }
}

public struct HTTPTargetError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
