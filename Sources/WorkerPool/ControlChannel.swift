import SystemSupport
import CLinuxShims
import CPoolWire
import Glibc
import SharedMemory
import SystemPackage
import EngineInterface
import Foundation

/// A control message, validated: a message that fails any check is never acted on.
public struct ControlMessage: Equatable, Sendable {
    public enum Kind: UInt16, Sendable {
        case ready = 1, run = 2, done = 3, error = 4, stop = 5, startFailed = 6
    }

    public var kind: Kind
    public var slot: Int = 0
    public var batch: Int = 0
    public var sequence: UInt64 = 0
    public var pid: Int = 0
    public var inputOffset: Int = 0
    public var outputOffset: Int = 0
    public var inferenceNanoseconds: UInt64 = 0
    public var receivedAt: UInt64 = 0
    public var repliedAt: UInt64 = 0
    public var text: String = ""

    public init(kind: Kind, slot: Int = 0, batch: Int = 0, sequence: UInt64 = 0) {
        self.kind = kind
        self.slot = slot
        self.batch = batch
        self.sequence = sequence
    }

    /// A worker's `ready`: its engine's description as JSON in the text (a long fallback reason
    /// is shortened to fit), and its largest warm-up batch's time, which the watchdog scales.
    public static func ready(_ engine: EngineDescription, warmUp: Duration) -> ControlMessage {
        var message = ControlMessage(kind: .ready)
        message.pid = Int(getpid())
        message.inferenceNanoseconds = UInt64(warmUp.seconds * 1e9)
        var described = engine
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        while true {
            let text = String(decoding: try! encoder.encode(described), as: UTF8.self)
            let excess = text.utf8.count - (Int(VP_CONTROL_TEXT_CAPACITY) - 1)
            guard excess > 0, let reason = described.fallback?.reason, reason.count > 1 else {
                message.text = text
                return message
            }
            described.fallback!.reason = String(reason.prefix(max(0, reason.count - excess - 1))) + "…"
        }
    }

    /// The engine description a `ready` message carries; nil if the text is not one.
    public var engineDescription: EngineDescription? {
        try? JSONDecoder().decode(EngineDescription.self, from: Data(text.utf8))
    }

    var native: vp_control_message {
        var message = vp_control_message()
        message.magic = VP_CONTROL_MAGIC
        message.version = UInt16(VP_CONTROL_VERSION)
        message.kind = kind.rawValue
        message.slot = UInt32(clamping: slot)
        message.batch = UInt32(clamping: batch)
        message.sequence = sequence
        message.pid = Int64(pid)
        message.input_offset = UInt64(clamping: inputOffset)
        message.output_offset = UInt64(clamping: outputOffset)
        message.inference_nanoseconds = inferenceNanoseconds
        message.received_at = receivedAt
        message.replied_at = repliedAt
        withUnsafeMutableBytes(of: &message.text) { buffer in
            let bytes = Array(text.utf8.prefix(buffer.count - 1))
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        return message
    }

    /// Checks everything a peer could get wrong; the arena bounds the slot and batch.
    init(validating message: vp_control_message, layout: SharedArena.Layout) throws(ControlError) {
        guard message.magic == VP_CONTROL_MAGIC else { throw .malformed("bad magic \(message.magic)") }
        guard message.version == VP_CONTROL_VERSION else { throw .malformed("protocol version \(message.version), expected \(VP_CONTROL_VERSION)") }
        guard let kind = Kind(rawValue: message.kind) else { throw .malformed("unknown kind \(message.kind)") }
        guard Int(message.slot) < layout.slotCount else { throw .malformed("slot \(message.slot) outside the arena") }
        guard Int(message.batch) <= layout.maxBatch else { throw .malformed("batch \(message.batch) over \(layout.maxBatch)") }
        if kind == .run { guard message.batch >= 1 else { throw .malformed("empty batch") } }
        self.kind = kind
        slot = Int(message.slot)
        batch = Int(message.batch)
        sequence = message.sequence
        pid = Int(message.pid)
        inputOffset = Int(clamping: message.input_offset)
        outputOffset = Int(clamping: message.output_offset)
        inferenceNanoseconds = message.inference_nanoseconds
        receivedAt = message.received_at
        repliedAt = message.replied_at
        text = withUnsafeBytes(of: message.text) { buffer in
            String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

public enum ControlError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case io(Errno)

    public var description: String {
        switch self {
        case .malformed(let reason): "malformed control message: \(reason)"
        case .io(let errno): "control socket: \(errno)"
        }
    }
}

/// One end of a worker's SEQPACKET control socket: whole fixed-size messages or nothing.
public struct ControlChannel: Sendable {
    public let descriptor: FileDescriptor
    let layout: SharedArena.Layout

    public init(descriptor: FileDescriptor, layout: SharedArena.Layout) {
        self.descriptor = descriptor
        self.layout = layout
    }

    /// `send(2)` of one message; `MSG_NOSIGNAL` so a dead peer is an error, not a SIGPIPE.
    public func send(_ message: ControlMessage) throws(ControlError) {
        var native = message.native
        let size = MemoryLayout<vp_control_message>.size
        let sent: Int
        do {
            sent = try retryingOnInterrupt { Glibc.send(descriptor.rawValue, &native, size, Int32(MSG_NOSIGNAL)) }
        } catch {
            throw .io(error)
        }
        guard sent == size else { throw .malformed("short send of \(sent) bytes") }
    }

    /// `recv(2)` of one message; nil when the peer has closed its end (it exited), or when a
    /// non-blocking end has nothing to read.
    public func receive() throws(ControlError) -> ControlMessage? {
        var native = vp_control_message()
        let size = MemoryLayout<vp_control_message>.size
        let received: Int
        do {
            received = try retryingOnInterrupt { recv(descriptor.rawValue, &native, size, Int32(MSG_TRUNC)) }
        } catch .connectionReset {
            return nil  // The peer died with a message unread: the same as closing.
        } catch .resourceTemporarilyUnavailable {
            return nil
        } catch {
            throw .io(error)
        }
        if received == 0 { return nil }
        guard received == size else { throw .malformed("\(received) bytes, expected \(size)") }
        return try ControlMessage(validating: native, layout: layout)
    }

    /// Sends raw bytes as one message: lets tests prove that garbage is refused.
    func sendRaw(_ bytes: [UInt8]) throws(Errno) {
        _ = try retryingOnInterrupt { bytes.withUnsafeBytes { Glibc.send(descriptor.rawValue, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
    }
}
