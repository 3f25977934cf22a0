import Foundation
import Hummingbird

/// An error answered as the Open Inference Protocol expects: `{"error": "…"}` with a status.
public struct ServerError: HTTPResponseError, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let message: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.code) \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let (fields, body) = reply
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// The header fields and `{"error": …}` body this error is answered with, by the router or
    /// by the channel handler that answers `infer`.
    var reply: (fields: HTTPFields, body: Data) {
        var fields = headers
        fields[.contentType] = "application/json"
        var json = JSONWriter(capacity: message.utf8.count + 16)
        json.object { json in
            json.key("error")
            json.string(message)
        }
        return (fields, Data(json.bytes))
    }

    static func badRequest(_ message: String) -> ServerError { ServerError(.badRequest, message) }
}

extension HTTPResponse.Status {
    /// nginx's status for a request whose client hung up first: never sent, only counted.
    static let clientClosedRequest = HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request")
}
