import Classification
import Foundation

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
    /// Sends request number `index` of the run: a target that spreads load over several
    /// models chooses one from it.
    func send(_ items: [WorkloadItem], request index: Int) async throws -> StageTimes
    /// The models a run reports apart (a mixed workload's), or none.
    var models: [String] { get }
    /// Which of `models` request `index` goes to.
    func model(ofRequest index: Int) -> Int?
    /// The processes serving, now (workers may have been replaced).
    func servingProcesses() -> ServingProcesses
}

extension BenchTarget {
    public func send(_ items: [WorkloadItem], request index: Int) async throws -> StageTimes { try await send(items) }
    public var models: [String] { [] }
    public func model(ofRequest index: Int) -> Int? { nil }
}

/// A server reached over a protocol (HTTP or gRPC): where it is, what its model takes, and a
/// connection to close.
public protocol ServerTarget: BenchTarget {
    var address: String { get }
    /// The model's input shape for one sample, from its metadata.
    var sampleShape: [Int] { get }
    func close() async
}
