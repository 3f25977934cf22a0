import EngineInterface
import Foundation
import SharedMemory

/// Everything a worker process needs, passed as one JSON argument to `visionpool-worker`.
public struct WorkerConfiguration: Codable, Sendable, Equatable {
    public var model: EngineModel
    /// The engine to build, with this worker's own thread count.
    public var engine: EngineOptions
    public var slotCount: Int
    public var maxBatch: Int
    /// The CPUs this worker is pinned to; empty leaves its affinity alone.
    public var cpus: [Int]
    /// The front's pid: a worker whose parent is already someone else exits at once.
    public var parentPID: Int32
    /// Lock the arena's pages in RAM on the CPU (a GPU worker pins them for DMA regardless).
    public var lockSlots = false
    /// Count the kernels the engine runs and report them when ready (int8 models always do):
    /// one more compile, with profiling, for `visionpool models --check`.
    public var countKernels = false

    public var arenaLayout: SharedArena.Layout {
        SharedArena.Layout(slotCount: slotCount, maxBatch: maxBatch, inputFloatsPerSample: model.sampleInputCount, outputFloatsPerSample: model.outputCount)
    }

    public func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    public static func decode(_ text: String) throws -> WorkerConfiguration {
        try JSONDecoder().decode(WorkerConfiguration.self, from: Data(text.utf8))
    }
}
