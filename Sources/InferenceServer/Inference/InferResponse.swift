import Foundation

/// An `infer` reply over HTTP: JSON, or JSON followed by raw output bytes for outputs asked
/// for with `binary_data` (then `Inference-Header-Content-Length` gives the JSON's length).
struct InferResponse {
    var body: Data
    var jsonLength: Int?

    init(_ reply: InferenceReply) throws {
        var binary = Data()
        let inline = reply.outputs.contains { if !$0.binary, case .fp32 = $0.content { true } else { false } }
        var json = JSONWriter(capacity: inline ? 12 * reply.outputs.map(\.shape).reduce(0) { $0 + $1.reduce(1, *) } + 256 : 512)
        try json.object { json in
            json.key("model_name")
            json.string(reply.model)
            json.key("model_version")
            json.string(reply.version)
            if let id = reply.id {
                json.key("id")
                json.string(id)
            }
            json.key("outputs")
            try json.array { json in
                for output in reply.outputs {
                    try json.object { json in
                        json.key("name")
                        json.string(output.name)
                        json.key("datatype")
                        json.string(output.datatype)
                        json.key("shape")
                        json.array { json in output.shape.forEach { json.number($0) } }
                        if output.binary {
                            let bytes = output.bytes
                            json.key("parameters")
                            json.object { json in
                                json.key("binary_data_size")
                                json.number(bytes.count)
                            }
                            binary.append(bytes)
                            return
                        }
                        json.key("data")
                        switch output.content {
                        case .strings(let strings):
                            json.array { json in strings.forEach { json.string($0) } }
                        case .fp32(let scores):
                            guard scores.allSatisfy(\.isFinite) else {
                                throw ServerError(.internalServerError, "the model produced non-finite scores, which JSON cannot carry; ask for binary_data")
                            }
                            json.array { json in scores.forEach { json.number($0) } }
                        }
                    }
                }
            }
        }
        body = Data(json.bytes) + binary
        jsonLength = binary.isEmpty ? nil : json.bytes.count
    }
}
