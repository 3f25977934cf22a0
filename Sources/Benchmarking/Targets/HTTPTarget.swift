import Classification
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
    private let connections: HTTPConnections
    private let inferPath: String
    private let headers: InferenceHeaders
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
        let address: HTTPConnections.Address
        let pathPrefix: String
        var serverPID: Int32?
        if let socketPath {
            address = .unixSocket(path: socketPath)
            pathPrefix = ""
            serverPID = ProcessTable.peerPID(socketPath: socketPath)
            guard serverPID != nil else { throw HTTPTargetError("nothing answers on \(socketPath): start `visionpool serve --socket \(socketPath)`") }
        } else if let url {
            guard let parts = URLComponents(string: url), parts.scheme == "http", let host = parts.host, !host.isEmpty else {
                throw HTTPTargetError("\(url) is not an http://HOST[:PORT] URL (the benchmark speaks plain HTTP; put TLS in front of the server, not in the benchmark)")
            }
            address = .tcp(host: host, port: parts.port ?? 80)
            pathPrefix = parts.path.hasSuffix("/") ? String(parts.path.dropLast()) : parts.path
        } else {
            throw HTTPTargetError("give a socket path or a URL")
        }
        let location = socketPath ?? url ?? ""
        let client = HTTPConnections(address, limit: connections)
        do {
            try await waitUntilReady(client, "\(pathPrefix)/v2/health/ready", at: location, within: readyWithin)
            let metadata = try await getJSON(client, "\(pathPrefix)/v2/models/\(model)")
            guard let inputs = metadata["inputs"] as? [[String: Any]], let input = inputs.first, let inputName = input["name"] as? String,
                  let outputs = metadata["outputs"] as? [[String: Any]], let outputName = outputs.first?["name"] as? String
            else { throw HTTPTargetError("the metadata of model \(model) names no input or output") }
            let sampleShape = Array(((input["shape"] as? [Int]) ?? []).drop { $0 < 0 })
            return HTTPTarget(
                connections: client, address: location, model: model, inferPath: "\(pathPrefix)/v2/models/\(model)/infer",
                headers: InferenceHeaders(input: inputName, output: outputName, sampleShape: sampleShape), sampleShape: sampleShape,
                serverPID: serverPID, timeout: TimeAmount(timeout))
        } catch {
            await client.shutdown()
            throw error
        }
    }

    private init(
        connections: HTTPConnections, address: String, model: String, inferPath: String, headers: InferenceHeaders, sampleShape: [Int],
        serverPID: Int32?, timeout: TimeAmount
    ) {
        self.connections = connections
        self.address = address
        self.model = model
        self.inferPath = inferPath
        self.headers = headers
        self.sampleShape = sampleShape
        self.serverPID = serverPID
        self.timeout = timeout
    }

    public func close() async {
        await connections.shutdown()
    }

    public func send(_ items: [WorkloadItem]) async throws -> StageTimes {
        let payload = items[0].payload
        let header = headers.header(for: payload)
        var body = ByteBuffer()
        body.reserveCapacity(header.utf8.count + 4 + payload.bytes)
        let headerLength = body.writeString(header)
        switch payload {
        case .image(let data):
            body.writeInteger(UInt32(data.count), endianness: .little)
            body.writeBytes(data)
        case .tensor(let values):
            _ = values.withUnsafeBytes { body.writeBytes($0) }
        case .floatBytes(let data):
            body.writeBytes(data)
        }
        let response = try await connections.execute(
            .POST, inferPath,
            headers: ["Inference-Header-Content-Length": String(headerLength), "Content-Type": "application/octet-stream"],
            body: body, timeout: timeout)
        guard response.status == .ok else {
            throw HTTPTargetError("HTTP \(response.status.code): \(String(buffer: response.body).prefix(200))")
        }
        return StageTimes(serverTiming: response.headers.first(name: "Server-Timing") ?? "")
    }

    public func servingProcesses() -> ServingProcesses {
        guard let serverPID else { return ServingProcesses(front: nil, workers: []) }
        return ServingProcesses(front: serverPID, workers: ProcessTable.children(of: serverPID))
    }

    private static func waitUntilReady(_ client: HTTPConnections, _ path: String, at address: String, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        var last = "no answer"
        while ContinuousClock.now < deadline {
            do {
                let response = try await client.execute(.GET, path, timeout: .seconds(5))
                if response.status == .ok { return }
                last = "HTTP \(response.status.code)"
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw HTTPTargetError("the server at \(address) was not ready within \(limit) (\(last))")
    }

    private static func getJSON(_ client: HTTPConnections, _ path: String) async throws -> [String: Any] {
        let response = try await client.execute(.GET, path, timeout: .seconds(30))
        guard response.status == .ok else {
            throw HTTPTargetError("GET \(path): HTTP \(response.status.code): \(String(buffer: response.body).prefix(200))")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any] else {
            throw HTTPTargetError("GET \(path) did not return a JSON object")
        }
        return object
    }
}

/// The JSON part of an inference request, the binary payload following it: images ask for
/// the top five classes (what a client wants back), tensors for the raw scores. Written once
/// around the one number that changes (the payload's size): serialising a dictionary per
/// request was a fifth of the benchmark's own CPU.
struct InferenceHeaders: Sendable {
    private let image: (prefix: String, suffix: String)
    private let tensor: (prefix: String, suffix: String)

    init(input: String, output: String, sampleShape: [Int]) {
        // Names come from the server's metadata; encoding (rather than pasting) keeps any quotes in them harmless.
        let input = Self.jsonString(input), output = Self.jsonString(output)
        let shape = ([1] + sampleShape).map(String.init).joined(separator: ",")
        image = (
            #"{"inputs":[{"name":\#(input),"shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":"#,
            #"}}],"outputs":[{"name":\#(output),"parameters":{"classification":5}}]}"#
        )
        tensor = (
            #"{"inputs":[{"name":\#(input),"shape":[\#(shape)],"datatype":"FP32","parameters":{"binary_data_size":"#,
            #"}}],"outputs":[{"name":\#(output),"parameters":{"binary_data":true}}]}"#
        )
    }

    func header(for payload: ModelInput) -> String {
        switch payload {
        case .image(let data): image.prefix + String(data.count + 4) + image.suffix
        case .tensor, .floatBytes: tensor.prefix + String(payload.bytes) + tensor.suffix
        }
    }

    private static func jsonString(_ text: String) -> String {
        String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
    }
}

public struct HTTPTargetError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
