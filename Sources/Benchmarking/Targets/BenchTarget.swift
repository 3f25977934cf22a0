import Foundation

/// A stage of a request whose time a target can report.
public enum Stage: String, CaseIterable, Codable, Sendable {
    /// Waiting for the engine, or for a slot and a free worker (a batch sent to a busy
    /// worker waits in its control socket).
    case queue
    /// Decoding, resizing and normalizing the image (zero for tensors).
    case decode
    /// The engine's own time.
    case inference
    /// The pool's hand-back: the worker's reply reaching the front, and the request being woken.
    case handoff
}

/// Where one request's time went, in seconds, as far as the target can tell.
public typealias StageTimes = [Stage: Double]

/// The processes that do a target's work, whose CPU time and memory a run reports.
public struct ServingProcesses: Sendable, Equatable {
    /// The process that decodes and batches: this one, or a server's.
    public var front: Int32?
    public var workers: [Int32]

    public init(front: Int32?, workers: [Int32]) {
        self.front = front
        self.workers = workers
    }
}

/// Something a benchmark sends requests to: the engine in this process, the worker pool,
/// or a server. Each measures the same way, from the request being handed over to its
/// answer being back.
public protocol BenchTarget: Sendable {
    /// Images in one request: the in-process engine's batch, else 1.
    var imagesPerRequest: Int { get }
    /// Sends one request; throws if it failed.
    func send(_ items: [WorkloadItem]) async throws -> StageTimes
    /// The processes serving, now (workers may have been replaced).
    func servingProcesses() -> ServingProcesses
}
