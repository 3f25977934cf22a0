import Foundation
@testable import InferenceServer
import Testing

/// The writer replies are built with: what it writes must read back, with Foundation's
/// parser, as exactly what was written in.
@Suite struct JSONWriterTests {
    @Test func nestedObjectsAndArraysReadBack() throws {
        var json = JSONWriter()
        json.object { json in
            json.key("name")
            json.string("logits")
            json.key("shape")
            json.array { json in [2, 1000].forEach { json.number($0) } }
            json.key("empty")
            json.array { _ in }
            json.key("parameters")
            json.object { json in
                json.key("binary_data_size")
                json.number(8000)
            }
        }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.bytes)) as? [String: Any])
        #expect(object["name"] as? String == "logits" && object["shape"] as? [Int] == [2, 1000] && (object["empty"] as? [Any])?.isEmpty == true)
        #expect((object["parameters"] as? [String: Any])?["binary_data_size"] as? Int == 8000)
    }

    @Test("strings are escaped as JSON requires", arguments: ["plain", "quote \" and \\ backslash", "tab\tnew\nline\rreturn", "\u{1}\u{1f}", "ünïcödé 猫 🐈", "a/b"])
    func stringsReadBack(text: String) throws {
        var json = JSONWriter()
        json.array { $0.string(text) }
        let array = try #require(try JSONSerialization.jsonObject(with: Data(json.bytes)) as? [String])
        #expect(array == [text])
        #expect(!String(decoding: json.bytes, as: UTF8.self).contains("\\/"), "slashes stay as they are")
    }

    @Test func floatsReadBackToTheSameFloat() throws {
        let values: [Float] = [0, -0.0, 1, 0.1, -3.5e-8, 1e-45, .greatestFiniteMagnitude, -123.456, 16_777_217]
        var json = JSONWriter()
        json.array { json in values.forEach { json.number($0) } }
        let read = try #require(try JSONSerialization.jsonObject(with: Data(json.bytes)) as? [NSNumber])
        #expect(read.map { Float($0.doubleValue) } == values)
    }

    @Test("scores get six decimals, as %.6f writes them", arguments: [Float(0), 1, 0.5, 0.1234564, 0.9999996, 0.000_000_4, 0.000_001])
    func sixDecimalsAsPrintfWritesThem(value: Float) {
        #expect(sixDecimals(value) == String(format: "%.6f", value))
    }
}
