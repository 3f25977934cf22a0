import Foundation
import InferenceEngines
import SharedMemory

/// Everything a worker process needs, passed as one JSON argument to `visionpool worker`.
public struct WorkerConfiguration: Codable, Sendable, Equatable {
    public var modelFile: String
    public var sampleShape: [Int]
    public var outputCount: Int
    public var quantized: Bool
    public var engine: EngineKind
    public var threads: Int
    public var precision: Precision
    public var cacheDirectory: String?
    public var slotCount: Int
    public var maxBatch: Int
    /// The CPUs this worker is pinned to; empty leaves its affinity alone.
    public var cpus: [Int]
    /// The front's pid: a worker whose parent is already someone else exits at once.
    public var parentPID: Int32

    public var arenaLayout: SharedArena.Layout {
        SharedArena.Layout(
            slotCount: slotCount, maxBatch: maxBatch, inputFloatsPerSample: sampleShape.reduce(1, *), outputFloatsPerSample: outputCount)
    }

    public var engineModel: EngineModel {
        EngineModel(file: URL(fileURLWithPath: modelFile), sampleShape: sampleShape, outputCount: outputCount, quantized: quantized)
    }

    public var engineOptions: EngineOptions {
        EngineOptions(kind: engine, threads: threads, precision: precision, cacheDirectory: cacheDirectory.map { URL(fileURLWithPath: $0) })
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
