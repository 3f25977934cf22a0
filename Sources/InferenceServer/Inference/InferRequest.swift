import Classification
import Foundation
import ModelCatalog

/// KServe `infer`'s HTTP body: JSON alone, or JSON followed by raw tensor bytes (the binary
/// tensor data extension, `Inference-Header-Content-Length`), read into the core's request.
enum InferRequestBody {
    /// Parses `body` for the model `manifest` describes. What the parsed samples will hold beyond
    /// the body (floats parsed from JSON, images decoded from base64) is reserved in `memory` first.
    static func parse(_ body: Data, jsonLength: Int?, manifest: ModelManifest, maxSamples: Int, memory: MemoryReservation) throws(ServerError) -> InferenceRequest {
        let jsonEnd = jsonLength ?? body.count
        guard jsonEnd >= 0, jsonEnd <= body.count else {
            throw .badRequest("Inference-Header-Content-Length \(jsonEnd) is outside the \(body.count)-byte body")
        }
        let json = body.prefix(jsonEnd)
        let tensorData = try JSONTensorData(json: json)
        guard let object = try? JSONSerialization.jsonObject(with: tensorData.header) as? [String: Any] else {
            throw .badRequest("the request is not a JSON object")
        }
        guard let inputs = object["inputs"] as? [[String: Any]], inputs.count == 1, let input = inputs.first else {
            throw .badRequest("\"inputs\" must hold exactly one input")
        }
        let datatype = input["datatype"] as? String
        try WireFormat.checkInput(name: input["name"] as? String ?? "", datatype: datatype, tensorInput: manifest.input.name)
        guard let shape = (input["shape"] as? [NSNumber])?.map(\.intValue), !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }) else {
            throw .badRequest("input \"shape\" must be a list of non-negative integers")
        }
        var binary = body.suffix(from: body.startIndex + jsonEnd)
        let binarySize = ((input["parameters"] as? [String: Any])?["binary_data_size"] as? NSNumber)?.intValue
        if let binarySize {
            guard binarySize >= 0, binarySize <= binary.count else {
                throw .badRequest("binary_data_size \(binarySize) is more than the \(binary.count) bytes after the JSON header")
            }
            binary = binary.prefix(binarySize)
        } else if jsonLength != nil, !binary.isEmpty {
            throw .badRequest("\(binary.count) bytes follow the JSON header but no input has binary_data_size")
        }
        let sampleShape = manifest.input.shape
        let samples: [ModelInput]
        if binarySize != nil {
            samples = try WireFormat.samples(datatype: datatype, shape: shape, bytes: binary, sampleShape: sampleShape, maxSamples: maxSamples)
        } else {
            let batch = try WireFormat.checkShape(datatype: datatype, shape: shape, sampleShape: sampleShape, maxSamples: maxSamples)
            if datatype == "FP32" {
                guard let range = tensorData.dataRange else { throw .badRequest("the FP32 input has no \"data\"") }
                let count = shape.reduce(1, *)
                try memory.grow(by: count * 4, for: "the FP32 tensor")
                let values = try JSONTensorData.floats(in: json, range: range, expected: count)
                try WireFormat.refuseNonFinite(values.firstIndex { !$0.isFinite }.map { ($0, values[$0]) })
                let sampleSize = count / batch
                samples = (0..<batch).map { .tensor(values[$0 * sampleSize..<($0 + 1) * sampleSize]) }
            } else {
                guard let range = tensorData.dataRange else { throw .badRequest("the BYTES input has no \"data\"") }
                // The strings as parsed, then their decoded bytes: at most twice the text.
                try memory.grow(by: 2 * range.count, for: "the BYTES data")
                let strings = try? JSONSerialization.jsonObject(with: json.dropFirst(range.lowerBound).prefix(range.count), options: .fragmentsAllowed)
                let images = try base64Strings(strings)
                guard images.count == batch else { throw .badRequest("shape says \(batch) images but \(images.count) were sent") }
                samples = images.map { .image($0) }
            }
        }
        let outputName = manifest.output.name
        let requested = object["outputs"] as? [[String: Any]] ?? [["name": outputName]]
        guard requested.count == 1 else { throw .badRequest("\"outputs\" may name the model's one output, \"\(outputName)\", once") }
        let outputs = try requested.map { output throws(ServerError) in
            let parameters = output["parameters"] as? [String: Any] ?? [:]
            return try WireFormat.requestedOutput(
                name: output["name"] as? String ?? "", modelOutput: outputName,
                classification: (parameters["classification"] as? NSNumber)?.intValue, binary: (parameters["binary_data"] as? Bool) ?? false)
        }
        return InferenceRequest(
            id: object["id"] as? String, samples: samples, outputs: outputs,
            timeoutParameter: ((object["parameters"] as? [String: Any])?["timeout"] as? NSNumber)?.intValue)
    }

    /// BYTES elements in JSON: images as base64 strings.
    private static func base64Strings(_ data: Any?) throws(ServerError) -> [Data] {
        guard let strings = (data as? [Any])?.flatMap({ ($0 as? [Any]) ?? [$0] }) as? [String] else {
            throw .badRequest("BYTES \"data\" must be a list of base64 strings (or use the binary data extension)")
        }
        return try strings.map { string throws(ServerError) in
            guard let decoded = Data(base64Encoded: string) else { throw .badRequest("a BYTES element is not valid base64") }
            return decoded
        }
    }
}
