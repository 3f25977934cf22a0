import CLinuxShims
import Foundation
import Glibc

/// A bare client on the server's Unix socket, for what curl will not do: stay idle, stall
/// halfway, send oversized headers.
final class RawConnection: Sendable {
    let fd: Int32

    init(socket path: String) throws {
        fd = CLinuxShims_connect_unix(path)
        guard fd >= 0 else { throw RawConnectionError("cannot connect to \(path): errno \(errno)") }
    }

    deinit { close(fd) }

    /// Writes all of `bytes`; false once the server has closed the connection.
    @discardableResult
    func send(_ bytes: some Sequence<UInt8>) -> Bool {
        let data = Array(bytes)
        var offset = 0
        while offset < data.count {
            let written = data[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    /// Everything the server sends until it closes the connection or `timeout` passes.
    func readUntilClosed(timeout: TimeInterval) -> (bytes: [UInt8], closed: Bool) {
        setReceiveTimeout(timeout)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 { return (received, true) }
            if count < 0 { return (received, errno == ECONNRESET) }
            received += buffer[0..<count]
        }
        return (received, false)
    }

    /// A `recv` waits at most `timeout` (SO_RCVTIMEO).
    private func setReceiveTimeout(_ timeout: TimeInterval) {
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }
}

extension RawConnection {
    /// A response as read off the connection: status, header fields (names in lower case), body.
    struct Response {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
    }

    /// The next `count` responses, each framed by its Content-Length, as they arrive within
    /// `timeout`; fewer if the server closes the connection or the time runs out.
    func readResponses(_ count: Int, timeout: TimeInterval) -> [Response] {
        setReceiveTimeout(timeout)
        var pending: [UInt8] = [], responses: [Response] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        while responses.count < count {
            if let (response, length) = Self.parse(pending) {
                responses.append(response)
                pending.removeFirst(length)
                continue
            }
            guard Date() < deadline else { break }
            let received = recv(fd, &buffer, buffer.count, 0)
            guard received > 0 else { break }
            pending += buffer[0..<received]
        }
        return responses
    }

    /// The first whole response in `bytes` and how many bytes it took.
    private static func parse(_ bytes: [UInt8]) -> (Response, Int)? {
        let separator = Array("\r\n\r\n".utf8)
        guard bytes.count >= 4, let end = (0...bytes.count - 4).first(where: { bytes[$0..<$0 + 4].elementsEqual(separator) }),
              let status = statusCode(bytes) else { return nil }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        let length = headers["content-length"].flatMap(Int.init) ?? 0
        guard bytes.count >= end + 4 + length else { return nil }
        return (Response(status: status, headers: headers, body: Array(bytes[(end + 4)..<(end + 4 + length)])), end + 4 + length)
    }
}

struct RawConnectionError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The status code of the first HTTP response in `bytes`, if there is one.
func statusCode(_ bytes: [UInt8]) -> Int? {
    let text = String(decoding: bytes.prefix(64), as: UTF8.self)
    guard text.hasPrefix("HTTP/1.1 ") else { return nil }
    return Int(text.dropFirst(9).prefix(3))
}
