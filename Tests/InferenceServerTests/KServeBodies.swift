import Foundation

/// BYTES elements in the binary extension: each a 4-byte little-endian length, then its bytes.
func lengthPrefixed(_ elements: [Data]) -> Data {
    elements.reduce(into: Data()) { result, element in
        withUnsafeBytes(of: UInt32(element.count).littleEndian) { result.append(contentsOf: $0) }
        result.append(element)
    }
}

/// A binary-extension body: the JSON header, then the raw bytes.
func binaryBody(_ header: [String: Any], _ bytes: Data) throws -> (Data, [String: String]) {
    let json = try JSONSerialization.data(withJSONObject: header)
    return (json + bytes, ["Inference-Header-Content-Length": String(json.count)])
}
