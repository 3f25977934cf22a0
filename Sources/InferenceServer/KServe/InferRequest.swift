import Foundation
import Hummingbird

/// An `infer` request, parsed and checked: JSON alone, or JSON followed by raw tensor bytes
/// (the binary tensor data extension, `Inference-Header-Content-Length`).
struct InferRequest {
    enum Samples {
        /// FP32 tensors, `count` samples of the model's input shape, flattened.
        case tensors(count: Int, values: [Float])
        /// Encoded images (JPEG, PNG, …), one per sample.
        case images([Data])

        var count: Int {
            switch self {
            case .tensors(let count, _): count
            case .images(let images): images.count
            }
        }
    }

    struct RequestedOutput {
        var name: String
        /// The classification extension: top-K as "score:index:label" strings.
        var classification: Int?
        var binary: Bool
    }

    var id: String?
    /// The protocol's `timeout` parameter, in microseconds.
    var timeout: Int?
    var inputName: String
    var samples: Samples
    var outputs: [RequestedOutput]

    /// Parses `body`; `sampleShape` is the model's input without the batch, `outputName` its output.
    init(body: Data, jsonLength: Int?, sampleShape: [Int], inputName expectedInput: String, outputName: String, maxSamples: Int) throws(ServerError) {
        let jsonEnd = jsonLength ?? body.count
        guard jsonEnd >= 0, jsonEnd <= body.count else {
            throw .badRequest("Inference-Header-Content-Length \(jsonEnd) is outside the \(body.count)-byte body")
        }
        guard let object = try? JSONSerialization.jsonObject(with: body.prefix(jsonEnd)) as? [String: Any] else {
            throw .badRequest("the request is not a JSON object")
        }
        id = object["id"] as? String
        timeout = ((object["parameters"] as? [String: Any])?["timeout"] as? NSNumber)?.intValue
        guard let inputs = object["inputs"] as? [[String: Any]], inputs.count == 1, let input = inputs.first else {
            throw .badRequest("\"inputs\" must hold exactly one input")
        }
        inputName = input["name"] as? String ?? ""
        guard inputName == expectedInput else { throw .badRequest("unknown input \"\(inputName)\"; the model's input is \"\(expectedInput)\"") }
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
        guard let batch = shape.first, (1...maxSamples).contains(batch) else {
            throw .badRequest("the batch (first dimension) must be 1...\(maxSamples)")
        }
        switch input["datatype"] as? String {
        case "FP32":
            guard Array(shape.dropFirst()) == sampleShape else {
                throw .badRequest("FP32 input shape \(shape) does not match the model's [N, \(sampleShape.map(String.init).joined(separator: ", "))]")
            }
            let count = shape.reduce(1, *)
            let values: [Float]
            if binarySize != nil {
                guard binary.count == count * 4 else { throw .badRequest("binary FP32 data is \(binary.count) bytes; shape \(shape) needs \(count * 4)") }
                values = binary.withUnsafeBytes { bytes in (0..<count).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
            } else {
                values = try Self.flatFloats(input["data"], expected: count)
            }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw .badRequest("FP32 element \(bad) is \(values[bad]); inputs must be finite numbers")
            }
            samples = .tensors(count: batch, values: values)
        case "BYTES":
            guard shape.count == 1 || (shape.count == 2 && shape[1] == 1) else { throw .badRequest("BYTES input shape must be [N] or [N, 1], one image per element") }
            let images = binarySize != nil ? try Self.lengthPrefixed(binary, atMost: batch) : try Self.base64Strings(input["data"])
            guard images.count == batch else { throw .badRequest("shape says \(batch) images but \(images.count) were sent") }
            samples = .images(images)
        case let other:
            throw .badRequest("datatype \(other ?? "(none)") is not supported; send FP32 tensors or BYTES images")
        }
        let requested = object["outputs"] as? [[String: Any]] ?? [["name": outputName]]
        guard requested.count == 1 else { throw .badRequest("\"outputs\" may name the model's one output, \"\(outputName)\", once") }
        outputs = try requested.map { output throws(ServerError) in
            let name = output["name"] as? String ?? ""
            guard name == outputName else { throw .badRequest("unknown output \"\(name)\"; the model's output is \"\(outputName)\"") }
            let parameters = output["parameters"] as? [String: Any] ?? [:]
            let classification = (parameters["classification"] as? NSNumber)?.intValue
            if let classification, classification < 1 { throw .badRequest("classification must be at least 1") }
            return RequestedOutput(name: name, classification: classification, binary: (parameters["binary_data"] as? Bool) ?? false)
        }
    }

    /// Numbers from `data`, flat or nested row-major, exactly `expected` of them.
    private static func flatFloats(_ data: Any?, expected: Int) throws(ServerError) -> [Float] {
        var values: [Float] = []
        values.reserveCapacity(expected)
        var pending: [Any] = [data as Any]
        while let next = pending.popLast() {
            if let list = next as? [Any] {
                pending.append(contentsOf: list.reversed())
            } else if let number = next as? NSNumber {
                values.append(number.floatValue)
            } else {
                throw .badRequest("FP32 \"data\" must hold numbers only")
            }
            guard values.count <= expected else { break }
        }
        guard values.count == expected else { throw .badRequest("FP32 \"data\" holds \(values.count) numbers; the shape needs \(expected)") }
        return values
    }

    /// BYTES elements in the binary extension: each a 4-byte little-endian length, then the bytes.
    private static func lengthPrefixed(_ data: Data, atMost limit: Int) throws(ServerError) -> [Data] {
        var elements: [Data] = []
        var offset = data.startIndex
        while offset < data.endIndex {
            guard elements.count < limit else { throw .badRequest("more BYTES elements than the shape's \(limit)") }
            guard data.endIndex - offset >= 4 else { throw .badRequest("BYTES data ends inside an element's length") }
            let length = data[offset..<offset + 4].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            offset += 4
            guard data.endIndex - offset >= length else { throw .badRequest("BYTES element of \(length) bytes runs past the data") }
            elements.append(Data(data[offset..<offset + length]))
            offset += length
        }
        return elements
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
