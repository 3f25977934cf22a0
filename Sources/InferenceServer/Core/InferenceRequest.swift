import Classification
import Foundation

/// An inference request as both protocols carry it, once its wire format is read: the samples,
/// the outputs asked for, the deadline parameter. HTTP's JSON and binary bodies
/// (`HTTPInferBody`) and gRPC's messages are parsed into this; the core answers it.
struct InferenceRequest: Sendable {
    var id: String?
    /// One model input per sample: encoded images, or FP32 tensors still in the bytes that
    /// carried them.
    var samples: [ModelInput]
    var outputs: [RequestedOutput]
    /// The protocol's `timeout` parameter, in microseconds.
    var timeoutParameter: Int?
}

/// An output the client asked for: the model's one output, optionally as the classification
/// extension's top-K strings; HTTP may ask for it as raw bytes after the JSON.
struct RequestedOutput: Sendable {
    var name: String
    var classification: Int?
    var binary: Bool
}

/// The answer before a protocol encodes it.
struct InferenceReply: Sendable {
    struct Output: Sendable {
        enum Content: Sendable {
            /// `batch × classes` scores, row by row.
            case fp32([Float])
            /// The classification extension's "score:index:label" strings, `batch × K`.
            case strings([String])
        }

        var name: String
        var shape: [Int]
        var content: Content
        var binary: Bool

        var datatype: String {
            switch content {
            case .fp32: "FP32"
            case .strings: "BYTES"
            }
        }

        /// The content as the binary forms carry it: little-endian floats, or length-prefixed strings.
        var bytes: Data {
            switch content {
            case .fp32(let scores): scores.withUnsafeBufferPointer { Data(buffer: $0) }
            case .strings(let strings): WireFormat.lengthPrefixed(strings.map(\.utf8))
            }
        }
    }

    var model: String
    var version: String
    var id: String?
    var outputs: [Output]
    var stages: StageTimes
}

/// What the wire formats share: how a request's input is checked, its raw bytes read as
/// samples, and BYTES elements framed.
enum WireFormat {
    /// The input that takes encoded images, beside the model's own tensor input (see `ServedModel.inputs`).
    static let encodedImageInput = "encoded_image"

    /// The model's tensor input takes FP32 tensors or BYTES images; `encoded_image` takes BYTES images only.
    static func checkInput(name: String, datatype: String?, tensorInput: String) throws(ServerError) {
        if name == tensorInput { return }
        guard name == encodedImageInput else {
            throw .badRequest("unknown input \"\(name)\"; the model's inputs are \"\(tensorInput)\" and \"\(encodedImageInput)\"")
        }
        guard datatype == "BYTES" else { throw .badRequest("input \"\(encodedImageInput)\" takes BYTES (encoded images), not \(datatype ?? "(none)")") }
    }

    /// The batch, once the datatype is one the model takes and the shape fits it: FP32
    /// `[N, model's input shape]`, or BYTES `[N]` / `[N, 1]` (one encoded image per element).
    static func checkShape(datatype: String?, shape: [Int], sampleShape: [Int], maxSamples: Int) throws(ServerError) -> Int {
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

    /// The samples in one input's raw bytes, whatever carried them: the binary data extension
    /// over HTTP, `raw_input_contents` (or typed contents laid out the same) over gRPC. FP32
    /// tensors stay in those bytes until each is copied into its slot; BYTES elements (4-byte
    /// little-endian length, then the bytes) are slices of them.
    static func samples(datatype: String?, shape: [Int], bytes: Data, sampleShape: [Int], maxSamples: Int) throws(ServerError) -> [ModelInput] {
        let batch = try checkShape(datatype: datatype, shape: shape, sampleShape: sampleShape, maxSamples: maxSamples)
        if datatype == "FP32" {
            let count = shape.reduce(1, *)
            guard bytes.count == count * 4 else { throw .badRequest("binary FP32 data is \(bytes.count) bytes; shape \(shape) needs \(count * 4)") }
            try refuseNonFinite(firstNonFinite(littleEndianFloats: bytes))
            let sampleBytes = count / batch * 4
            return (0..<batch).map { .floatBytes(bytes[bytes.startIndex + $0 * sampleBytes..<bytes.startIndex + ($0 + 1) * sampleBytes]) }
        }
        let images = try lengthPrefixedElements(bytes, atMost: batch)
        guard images.count == batch else { throw .badRequest("shape says \(batch) images but \(images.count) were sent") }
        return images.map { .image($0) }
    }

    /// An output the client asked for: the model's one output, optionally as the
    /// classification extension's top-K strings.
    static func requestedOutput(name: String, modelOutput: String, classification: Int?, binary: Bool) throws(ServerError) -> RequestedOutput {
        guard name == modelOutput else { throw .badRequest("unknown output \"\(name)\"; the model's output is \"\(modelOutput)\"") }
        if let classification, classification < 1 { throw .badRequest("classification must be at least 1") }
        return RequestedOutput(name: name, classification: classification, binary: binary)
    }

    /// One refusal for an infinity or NaN, wherever the tensor came from.
    static func refuseNonFinite(_ bad: (index: Int, value: Float)?) throws(ServerError) {
        if let bad { throw .badRequest("FP32 element \(bad.index) is \(bad.value); inputs must be finite numbers") }
    }

    /// The first infinity or NaN among little-endian FP32 bytes, read where they lie. A float is
    /// not finite when its exponent bits are all ones; sixteen are tested at once (a 600 KB tensor
    /// took 90 µs one float at a time, over a tenth of the front's time for it), and the block
    /// that holds one is searched float by float for its index.
    static func firstNonFinite(littleEndianFloats data: Data) -> (index: Int, value: Float)? {
        data.withUnsafeBytes { bytes in
            let count = bytes.count / 4, exponent = SIMD16<UInt32>(repeating: 0x7F80_0000)
            var start = 0
            while start + 16 <= count {
                let bits = bytes.loadUnaligned(fromByteOffset: start * 4, as: SIMD16<UInt32>.self)
                if any(bits & exponent .== exponent) { break }
                start += 16
            }
            for index in start..<count {
                let value = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
                if !value.isFinite { return (index, value) }
            }
            return nil
        }
    }

    /// BYTES elements in the binary forms: each a 4-byte little-endian length, then the bytes,
    /// which stay where they are (slices share the storage).
    private static func lengthPrefixedElements(_ data: Data, atMost limit: Int) throws(ServerError) -> [Data] {
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
    /// then its bytes (what `lengthPrefixedElements` reads back).
    static func lengthPrefixed<Element: Collection<UInt8>>(_ elements: [Element]) -> Data {
        var data = Data(capacity: elements.reduce(0) { $0 + 4 + $1.count })
        for element in elements {
            withUnsafeBytes(of: UInt32(element.count).littleEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: element)
        }
        return data
    }
}
