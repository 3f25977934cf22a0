import Classification
import Foundation
import ImagePipeline
import Synchronization
import ModelCatalog
import WorkerPool

/// One served model: its catalog entry and the pool that runs it.
public final class ModelService: Sendable {
    public let entry: CatalogEntry
    public let classifier: PoolClassifier
    /// Images or tensors accepted in one request.
    public let maxSamplesPerRequest: Int

    public init(entry: CatalogEntry, classifier: PoolClassifier, maxSamplesPerRequest: Int = 64) {
        self.entry = entry
        self.classifier = classifier
        self.maxSamplesPerRequest = maxSamplesPerRequest
    }

    /// Set by the first stop signal: readiness fails at once, while requests still in flight
    /// (or already on their way over open connections) are served.
    private let draining = Atomic(false)

    public var name: String { entry.manifest.name }
    /// Whether requests can be served now (readiness).
    public var isReady: Bool { !draining.load(ordering: .relaxed) && classifier.pool.canServe }
    /// False only when the pool cannot recover by itself (liveness).
    public var isLive: Bool { classifier.pool.status.isLive }

    /// Why the service is not ready, for the probe's answer.
    var readinessProblem: String {
        draining.load(ordering: .relaxed) ? "the server is stopping" : "the worker pool is \(classifier.pool.status.health)"
    }

    /// Readiness goes false from now on; nothing else changes.
    public func beginDraining() {
        draining.store(true, ordering: .relaxed)
    }
    var sampleShape: [Int] { entry.manifest.input.shape }
    var classes: Int { entry.manifest.output.classes }

    /// The model metadata of the protocol: name, versions, platform, inputs and outputs.
    var metadata: [String: Any] {
        let manifest = entry.manifest
        return [
            "name": manifest.name, "versions": ["1"], "platform": "onnx",
            "inputs": [["name": manifest.input.name, "datatype": manifest.input.datatype, "shape": [-1] + manifest.input.shape]],
            "outputs": [["name": manifest.output.name, "datatype": "FP32", "shape": [-1, manifest.output.classes]]],
        ]
    }

    /// Runs every sample through the pool at once (they may share batches) and returns the
    /// scores row by row, in order, with the slowest sample's time in each stage.
    func scores(for samples: InferRequest.Samples, metrics: ServerMetrics) async throws -> (scores: [Float], stages: StageSeconds) {
        let classes = self.classes
        let rows = try await withThrowingTaskGroup(of: (Int, [Float], StageSeconds).self) { group in
            for index in 0..<samples.count {
                group.addTask { [classifier] in
                    var decode = 0.0
                    return try await classifier.pool.infer(
                        prepare: { tensor in decode = try Self.write(samples, index: index, into: tensor, spec: classifier.spec) },
                        consume: { scores, receipt in
                            metrics.stage("queue", seconds: receipt.queueSeconds)
                            metrics.stage("inference", seconds: receipt.inferenceSeconds)
                            metrics.batch(size: receipt.batchSize)
                            let stages = StageSeconds(queue: receipt.queueSeconds, decode: decode, inference: receipt.inferenceSeconds)
                            return (index, Array(scores), stages)
                        })
                }
            }
            return try await group.reduce(into: [([Float], StageSeconds)](repeating: ([], StageSeconds()), count: samples.count)) {
                $0[$1.0] = ($1.1, $1.2)
            }
        }
        precondition(rows.allSatisfy { $0.0.count == classes })
        let slowest = rows.reduce(StageSeconds()) { $0.slowest($1.1) }
        if case .images = samples { metrics.stage("decode", seconds: slowest.decode) }
        return (rows.flatMap { $0.0 }, slowest)
    }

    /// The sample's tensor, written straight into its slot: decoded there (returning the
    /// seconds decoding and preprocessing took), or copied from the request.
    private static func write(
        _ samples: InferRequest.Samples, index: Int, into tensor: UnsafeMutableBufferPointer<Float>, spec: PreprocessSpec
    ) throws -> Double {
        switch samples {
        case .tensors(_, let values):
            let start = index * tensor.count
            _ = values[start..<start + tensor.count].withUnsafeBufferPointer { tensor.initialize(from: $0) }
            return 0
        case .images(let images):
            let report = try images[index].withUnsafeBytes { bytes in try ImagePreprocessor.preprocess(bytes, spec: spec, into: tensor) }
            return report.decodeSeconds + report.resizeSeconds + report.normalizeSeconds
        }
    }

    /// Bytes decoding `images` holds in the front, read from their headers, for the memory budget.
    func decodingBytes(_ images: [Data]) -> Int {
        images.reduce(0) { total, image in total + image.withUnsafeBytes { ImagePreprocessor.workingBytes($0, spec: classifier.spec) } }
    }

    /// "score:index:label" strings, most likely first, as the classification extension writes them.
    func classificationStrings(_ scores: ArraySlice<Float>, top k: Int) -> [String] {
        Array(scores).withUnsafeBufferPointer { classifier.scoredClasses($0, k: k) }.map {
            "\(String(format: "%.6f", $0.score)):\($0.classIndex):\($0.label)"
        }
    }
}

/// Where a request's time went on the server, reported to clients in `Server-Timing`.
struct StageSeconds: Sendable {
    var queue = 0.0
    var decode = 0.0
    var inference = 0.0

    func slowest(_ other: StageSeconds) -> StageSeconds {
        StageSeconds(queue: max(queue, other.queue), decode: max(decode, other.decode), inference: max(inference, other.inference))
    }

    /// The `Server-Timing` header value (W3C), durations in milliseconds.
    var serverTiming: String {
        [("queue", queue), ("decode", decode), ("inference", inference)]
            .map { "\($0.0);dur=\(String(format: "%.3f", $0.1 * 1000))" }.joined(separator: ", ")
    }
}
