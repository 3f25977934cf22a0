import Foundation

/// An `infer` reply: JSON, or JSON followed by raw output bytes for outputs asked for with
/// `binary_data` (then `Inference-Header-Content-Length` gives the JSON's length).
struct InferResponse {
    var body: Data
    var jsonLength: Int?

    /// `scores` holds `batch` rows of `classes` logits; `classify` turns a row into labelled top-K.
    init(
        model: String, id: String?, outputs: [InferRequest.RequestedOutput], batch: Int, classes: Int, scores: [Float],
        classify: (ArraySlice<Float>, Int) -> [String]
    ) throws {
        var described: [[String: Any]] = []
        var binary = Data()
        for output in outputs {
            var entry: [String: Any] = ["name": output.name]
            var bytes: Data
            if let k = output.classification {
                let top = min(k, classes)
                let strings = (0..<batch).flatMap { row in classify(scores[(row * classes)..<((row + 1) * classes)], top) }
                entry["datatype"] = "BYTES"
                entry["shape"] = [batch, top]
                bytes = Data(strings.flatMap { string -> [UInt8] in
                    let utf8 = Array(string.utf8)
                    return withUnsafeBytes(of: UInt32(utf8.count).littleEndian, Array.init) + utf8
                })
                if !output.binary { entry["data"] = strings }
            } else {
                entry["datatype"] = "FP32"
                entry["shape"] = [batch, classes]
                bytes = scores.withUnsafeBufferPointer { Data(buffer: $0) }
                if !output.binary {
                    guard scores.allSatisfy(\.isFinite) else { throw ServerError(.internalServerError, "the model produced non-finite scores, which JSON cannot carry; ask for binary_data") }
                    entry["data"] = scores.map(Double.init)
                }
            }
            if output.binary {
                entry["parameters"] = ["binary_data_size": bytes.count]
                binary.append(bytes)
            }
            described.append(entry)
        }
        var object: [String: Any] = ["model_name": model, "model_version": "1", "outputs": described]
        if let id { object["id"] = id }
        let json = try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])
        body = json + binary
        jsonLength = binary.isEmpty ? nil : json.count
    }
}
