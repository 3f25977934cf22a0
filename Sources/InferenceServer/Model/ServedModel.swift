import Classification
import EngineInterface
import Foundation
import ModelRegistry

/// What the protocols say about a loaded model: its metadata, its inputs, and the
/// classification extension's strings.
extension LoadedModel {
    var classes: Int { manifest.output.classes }
    /// What the metadata names as its platform.
    var platform: String { "onnx" }

    /// The protocol's model metadata (name, versions, platform, inputs and outputs), the
    /// engine that runs it, and the precision it runs at (with the fallback, if there was one).
    func metadata(versions: [String]) -> [String: Any] {
        var metadata: [String: Any] = [
            "name": name, "versions": versions, "platform": platform, "engine": engine,
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

    /// Triton's model configuration, as it is: the batch the pool forms, the inputs and the
    /// output, one CPU (or GPU) instance group of the pool's workers, the batching delay.
    var tritonConfig: [String: Any] {
        let configuration = pool.configuration
        let gpu = configuration.engine.device.isGPU
        return [
            "name": name, "platform": "onnxruntime_onnx", "backend": configuration.engine.kind.rawValue,
            "max_batch_size": configuration.maxBatch,
            "input": [
                ["name": manifest.input.name, "data_type": "TYPE_FP32", "format": "FORMAT_NCHW", "dims": manifest.input.shape],
                ["name": WireFormat.encodedImageInput, "data_type": "TYPE_STRING", "dims": [1]],
            ],
            "output": [["name": manifest.output.name, "data_type": "TYPE_FP32", "dims": [classes]]],
            "instance_group": [["name": "\(name)_\(gpu ? "gpu" : "cpu")", "kind": gpu ? "KIND_GPU" : "KIND_CPU", "count": configuration.workers]],
            "dynamic_batching": ["max_queue_delay_microseconds": Int(configuration.batchDelay.seconds * 1e6)],
            "version_policy": ["specific": ["versions": [version]]],
        ]
    }
}

/// A probability with six decimals, as `%.6f` writes it, without Foundation's formatter
/// (which cost more than the rest of a reply).
func sixDecimals(_ value: Float) -> String {
    let millionths = Int((Double(value) * 1_000_000).rounded())
    let fraction = String(abs(millionths) % 1_000_000)
    return (millionths < 0 ? "-" : "") + "\(abs(millionths) / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
}
