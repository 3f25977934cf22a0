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
        var binary = Data()
        var json = JSONWriter(capacity: outputs.contains { !$0.binary && $0.classification == nil } ? 12 * scores.count + 256 : 512)
        try json.object { json in
            json.key("model_name")
            json.string(model)
            json.key("model_version")
            json.string("1")
            if let id {
                json.key("id")
                json.string(id)
            }
            json.key("outputs")
            try json.array { json in
                for output in outputs {
                    try json.object { json in
                        json.key("name")
                        json.string(output.name)
                        let bytes: Data
                        if let k = output.classification {
                            let top = min(k, classes)
                            let strings = (0..<batch).flatMap { row in classify(scores[(row * classes)..<((row + 1) * classes)], top) }
                            Self.header(&json, datatype: "BYTES", shape: [batch, top])
                            bytes = InferRequest.lengthPrefixedBytes(strings.map(\.utf8))
                            if !output.binary {
                                json.key("data")
                                json.array { json in strings.forEach { json.string($0) } }
                            }
                        } else {
                            Self.header(&json, datatype: "FP32", shape: [batch, classes])
                            bytes = scores.withUnsafeBufferPointer { Data(buffer: $0) }
                            if !output.binary {
                                guard scores.allSatisfy(\.isFinite) else {
                                    throw ServerError(.internalServerError, "the model produced non-finite scores, which JSON cannot carry; ask for binary_data")
                                }
                                json.key("data")
                                json.array { json in scores.forEach { json.number($0) } }
                            }
                        }
                        if output.binary {
                            json.key("parameters")
                            json.object { json in
                                json.key("binary_data_size")
                                json.number(bytes.count)
                            }
                            binary.append(bytes)
                        }
                    }
                }
            }
        }
        body = Data(json.bytes) + binary
        jsonLength = binary.isEmpty ? nil : json.bytes.count
    }

    private static func header(_ json: inout JSONWriter, datatype: String, shape: [Int]) {
        json.key("datatype")
        json.string(datatype)
        json.key("shape")
        json.array { json in shape.forEach { json.number($0) } }
    }
}
