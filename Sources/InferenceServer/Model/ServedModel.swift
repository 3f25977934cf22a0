import Classification
import EngineInterface
import Foundation
import ModelCatalog
import WorkerPool

/// What the routes need from the model they serve: its manifest, its health, and a way to
/// turn samples into scores. `ModelService` serves one catalog model on a worker pool.
public protocol ServedModel: Sendable {
    var manifest: ModelManifest { get }
    /// The version served, as requests and replies name it (a model folder's numbered version, else "1").
    var version: String { get }
    /// Images or tensors accepted in one request.
    var maxSamplesPerRequest: Int { get }
    /// Whether requests can be served now (readiness).
    var isReady: Bool { get }
    /// False only when the model cannot recover by itself (liveness).
    var isLive: Bool { get }
    /// Whether inference is taken now: a draining server still serves what reaches it.
    var acceptsInference: Bool { get }
    /// Why the model is not ready, for a probe's or a refused request's answer.
    var readinessProblem: String { get }
    /// The pool's state, for the metrics.
    var poolStatus: PoolStatus { get }
    /// The engine that runs it (`openvino`, `onnxruntime`, `opencv`), named in its metadata.
    var engine: String { get }
    /// What the ready workers' engine runs as (precision, and the fallback that got it running);
    /// nil before a worker is ready.
    var engineDescription: EngineDescription? { get }

    /// Bytes decoding `samples` will hold in the front, read from the images' headers.
    func decodingBytes(_ samples: [ModelInput]) -> Int
    /// Every sample's scores, row by row in order, with the slowest sample's time per stage;
    /// what only the model sees (batch sizes) goes to `metrics`.
    func scores(for samples: [ModelInput], metrics: ServerMetrics) async throws -> (scores: [Float], stages: StageTimes)
    /// The top `k` classes of one row of scores.
    func topClasses(_ scores: ArraySlice<Float>, k: Int) -> [ScoredClass]
}

extension ServedModel {
    var name: String { manifest.name }
    var classes: Int { manifest.output.classes }
    /// What the metadata and the health routes name as its platform.
    var platform: String { "onnx" }

    /// A request names this model (and, if it asks for one, its version); 404 otherwise.
    func check(name: String, version: String?) throws(ServerError) {
        guard name == self.name else { throw ServerError(.notFound, "unknown model \"\(name)\"; this server serves \"\(self.name)\"") }
        if let version, !version.isEmpty, version != self.version {
            throw ServerError(.notFound, "model \(self.name) has no version \"\(version)\"; it serves version \(self.version)")
        }
    }

    /// The model metadata of the protocol (name, versions, platform, inputs and outputs),
    /// and the engine that runs it.
    var metadata: [String: Any] {
        var metadata: [String: Any] = [
            "name": manifest.name, "versions": [version], "platform": platform, "engine": engine,
            "inputs": inputs.map { ["name": $0.name, "datatype": $0.datatype, "shape": $0.shape] },
            "outputs": [["name": manifest.output.name, "datatype": "FP32", "shape": [-1, manifest.output.classes]]],
        ]
        if let running = engineDescription {
            metadata["precision"] = running.precisionOnDevice
            if let fallback = running.fallback {
                metadata["precision_fallback"] = ["from": fallback.from, "to": fallback.to, "reason": fallback.reason]
            }
        }
        return metadata
    }

    /// The inputs the metadata lists, of which a request sends one: the model's FP32 tensor
    /// `[-1, C, H, W]`, and `encoded_image`, BYTES `[-1]`, one encoded image (JPEG, PNG, …)
    /// per element, which the server decodes and preprocesses as the model needs. A generic
    /// client reading the metadata (tritonclient's `get_model_metadata`) sees both. The tensor
    /// input also takes BYTES images, as it always has.
    var inputs: [(name: String, datatype: String, shape: [Int])] {
        [(manifest.input.name, manifest.input.datatype, [-1] + manifest.input.shape), (WireFormat.encodedImageInput, "BYTES", [-1])]
    }

    /// "score:index:label" strings, most likely first, as the classification extension writes them.
    func classificationStrings(_ scores: ArraySlice<Float>, top k: Int) -> [String] {
        topClasses(scores, k: k).map { "\(sixDecimals($0.score)):\($0.classIndex):\($0.label)" }
    }
}

/// A probability with six decimals, as `%.6f` writes it, without Foundation's formatter
/// (which cost more than the rest of a reply).
func sixDecimals(_ value: Float) -> String {
    let millionths = Int((Double(value) * 1_000_000).rounded())
    let fraction = String(abs(millionths) % 1_000_000)
    return (millionths < 0 ? "-" : "") + "\(abs(millionths) / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
}
