import Classification
import Foundation
import Hummingbird

/// An `infer` request, parsed and checked: JSON alone, or JSON followed by raw tensor bytes
/// (the binary tensor data extension, `Inference-Header-Content-Length`).
public struct InferRequest {
    public enum Samples: Sendable {
        /// FP32 tensors from JSON text, `count` samples of the model's input shape, flattened.
        case tensors(count: Int, values: [Float])
        /// FP32 tensors in the binary extension: `count` samples' little-endian bytes, left in
        /// the body until each is copied into its slot.
        case tensorBytes(count: Int, bytes: Data)
        /// Encoded images (JPEG, PNG, …), one per sample.
        case images([Data])

        var count: Int {
            switch self {
            case .tensors(let count, _), .tensorBytes(let count, _): count
            case .images(let images): images.count
            }
        }

        /// Sample `index`, whose tensor holds `sampleSize` floats.
        func input(_ index: Int, sampleSize: Int) -> ModelInput {
            switch self {
            case .tensors(_, let values): .tensor(values[index * sampleSize..<(index + 1) * sampleSize])
            case .tensorBytes(_, let bytes):
                .floatBytes(bytes[bytes.startIndex + index * sampleSize * 4..<bytes.startIndex + (index + 1) * sampleSize * 4])
            case .images(let images): .image(images[index])
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

    /// Parses `body`; `sampleShape` is the model's input without the batch, `outputName` its
    /// output. What the parsed samples will hold beyond the body is reserved in `memory` first.
    init(
        body: Data, jsonLength: Int?, sampleShape: [Int], inputName expectedInput: String, outputName: String, maxSamples: Int,
        memory: MemoryReservation
    ) throws(ServerError) {
        let jsonEnd = jsonLength ?? body.count
        guard jsonEnd >= 0, jsonEnd <= body.count else {
            throw .badRequest("Inference-Header-Content-Length \(jsonEnd) is outside the \(body.count)-byte body")
        }
        let json = body.prefix(jsonEnd)
        let tensorData = try JSONTensorData(json: json)
        guard let object = try? JSONSerialization.jsonObject(with: tensorData.header) as? [String: Any] else {
            throw .badRequest("the request is not a JSON object")
        }
        id = object["id"] as? String
        timeout = ((object["parameters"] as? [String: Any])?["timeout"] as? NSNumber)?.intValue
        guard let inputs = object["inputs"] as? [[String: Any]], inputs.count == 1, let input = inputs.first else {
            throw .badRequest("\"inputs\" must hold exactly one input")
        }
        inputName = input["name"] as? String ?? ""
        try Self.checkInput(name: inputName, datatype: input["datatype"] as? String, tensorInput: expectedInput)
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
        let datatype = input["datatype"] as? String
        if binarySize != nil {
            samples = try Self.rawSamples(datatype: datatype, shape: shape, bytes: binary, sampleShape: sampleShape, maxSamples: maxSamples)
        } else {
            let batch = try Self.checkShape(datatype: datatype, shape: shape, sampleShape: sampleShape, maxSamples: maxSamples)
            if datatype == "FP32" {
                guard let range = tensorData.dataRange else { throw .badRequest("the FP32 input has no \"data\"") }
                let count = shape.reduce(1, *)
                try memory.grow(by: count * 4, for: "the FP32 tensor")
                let values = try JSONTensorData.floats(in: json, range: range, expected: count)
                try Self.refuseNonFinite(values.firstIndex { !$0.isFinite }.map { ($0, values[$0]) })
                samples = .tensors(count: batch, values: values)
            } else {
                guard let range = tensorData.dataRange else { throw .badRequest("the BYTES input has no \"data\"") }
                // The strings as parsed, then their decoded bytes: at most twice the text.
                try memory.grow(by: 2 * range.count, for: "the BYTES data")
                let strings = try? JSONSerialization.jsonObject(with: json.dropFirst(range.lowerBound).prefix(range.count), options: .fragmentsAllowed)
                let images = try Self.base64Strings(strings)
                guard images.count == batch else { throw .badRequest("shape says \(batch) images but \(images.count) were sent") }
                samples = .images(images)
            }
        }
        let requested = object["outputs"] as? [[String: Any]] ?? [["name": outputName]]
        guard requested.count == 1 else { throw .badRequest("\"outputs\" may name the model's one output, \"\(outputName)\", once") }
        outputs = try requested.map { output throws(ServerError) in
            let parameters = output["parameters"] as? [String: Any] ?? [:]
            return try Self.requestedOutput(
                name: output["name"] as? String ?? "", modelOutput: outputName,
                classification: (parameters["classification"] as? NSNumber)?.intValue, binary: (parameters["binary_data"] as? Bool) ?? false)
        }
    }

    /// The samples in one input's raw bytes, whatever carried them: the binary data extension
    /// over HTTP, `raw_input_contents` over gRPC. FP32 tensors stay in those bytes until each
    /// is copied into its slot; BYTES elements (4-byte little-endian length, then the bytes)
    /// are slices of them.
    static func rawSamples(datatype: String?, shape: [Int], bytes: Data, sampleShape: [Int], maxSamples: Int) throws(ServerError) -> Samples {
        let batch = try checkShape(datatype: datatype, shape: shape, sampleShape: sampleShape, maxSamples: maxSamples)
        if datatype == "FP32" {
            let count = shape.reduce(1, *)
            guard bytes.count == count * 4 else { throw .badRequest("binary FP32 data is \(bytes.count) bytes; shape \(shape) needs \(count * 4)") }
            try refuseNonFinite(firstNonFinite(littleEndianFloats: bytes))
            return .tensorBytes(count: batch, bytes: bytes)
        }
        let images = try lengthPrefixed(bytes, atMost: batch)
        guard images.count == batch else { throw .badRequest("shape says \(batch) images but \(images.count) were sent") }
        return .images(images)
    }

    /// The batch, once the datatype is one the model takes and the shape fits it: FP32
    /// `[N, model's input shape]`, or BYTES `[N]` / `[N, 1]` (one encoded image per element).
    private static func checkShape(datatype: String?, shape: [Int], sampleShape: [Int], maxSamples: Int) throws(ServerError) -> Int {
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }) else { throw .badRequest("input \"shape\" must be a list of non-negative integers") }
        guard let batch = shape.first, (1...maxSamples).contains(batch) else {
            throw .badRequest("the batch (first dimension) must be 1...\(maxSamples)")
        }
        switch datatype {
        case "FP32":
            guard Array(shape.dropFirst()) == sampleShape else {
                throw .badRequest("FP32 input shape \(shape) does not match the model's [N, \(sampleShape.map(String.init).joined(separator: ", "))]")
            }
        case "BYTES":
            guard shape.count == 1 || (shape.count == 2 && shape[1] == 1) else { throw .badRequest("BYTES input shape must be [N] or [N, 1], one image per element") }
        case let other:
            throw .badRequest("datatype \(other ?? "(none)") is not supported; send FP32 tensors or BYTES images")
        }
        return batch
    }

    /// The input that takes encoded images, beside the model's own tensor input (see `ServedModel.inputs`).
    static let encodedImageInput = "encoded_image"

    /// The model's tensor input takes FP32 tensors or BYTES images; `encoded_image` takes
    /// BYTES images only.
    static func checkInput(name: String, datatype: String?, tensorInput: String) throws(ServerError) {
        if name == tensorInput { return }
        guard name == encodedImageInput else {
            throw .badRequest("unknown input \"\(name)\"; the model's inputs are \"\(tensorInput)\" and \"\(encodedImageInput)\"")
        }
        guard datatype == "BYTES" else { throw .badRequest("input \"\(encodedImageInput)\" takes BYTES (encoded images), not \(datatype ?? "(none)")") }
    }

    /// An output the client asked for: the model's one output, optionally as the
    /// classification extension's top-K strings.
    static func requestedOutput(name: String, modelOutput: String, classification: Int?, binary: Bool) throws(ServerError) -> RequestedOutput {
        guard name == modelOutput else { throw .badRequest("unknown output \"\(name)\"; the model's output is \"\(modelOutput)\"") }
        if let classification, classification < 1 { throw .badRequest("classification must be at least 1") }
        return RequestedOutput(name: name, classification: classification, binary: binary)
    }

    /// One refusal for an infinity or NaN, wherever the tensor came from.
    private static func refuseNonFinite(_ bad: (index: Int, value: Float)?) throws(ServerError) {
        if let bad { throw .badRequest("FP32 element \(bad.index) is \(bad.value); inputs must be finite numbers") }
    }

    /// The first infinity or NaN among little-endian FP32 bytes, read where they lie.
    private static func firstNonFinite(littleEndianFloats data: Data) -> (index: Int, value: Float)? {
        data.withUnsafeBytes { bytes in
            for index in 0..<bytes.count / 4 {
                let value = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
                if !value.isFinite { return (index, value) }
            }
            return nil
        }
    }

    /// BYTES elements in the binary extension: each a 4-byte little-endian length, then the
    /// bytes, which stay in the body (slices share its storage).
    private static func lengthPrefixed(_ data: Data, atMost limit: Int) throws(ServerError) -> [Data] {
        var elements: [Data] = []
        var offset = data.startIndex
        while offset < data.endIndex {
            guard elements.count < limit else { throw .badRequest("more BYTES elements than the shape's \(limit)") }
            guard data.endIndex - offset >= 4 else { throw .badRequest("BYTES data ends inside an element's length") }
            let length = data[offset..<offset + 4].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            offset += 4
            guard data.endIndex - offset >= length else { throw .badRequest("BYTES element of \(length) bytes runs past the data") }
            elements.append(data[offset..<offset + length])
            offset += length
        }
        return elements
    }

    /// BYTES elements as the binary forms carry them: each a 4-byte little-endian length,
    /// then its bytes (what `lengthPrefixed` reads back).
    static func lengthPrefixedBytes<Element: Collection<UInt8>>(_ elements: [Element]) -> Data {
        var data = Data(capacity: elements.reduce(0) { $0 + 4 + $1.count })
        for element in elements {
            withUnsafeBytes(of: UInt32(element.count).littleEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: element)
        }
        return data
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
