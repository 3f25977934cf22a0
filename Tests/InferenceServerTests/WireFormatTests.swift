import Foundation
import Testing

@testable import InferenceServer

/// The FP32 bytes a client sends are refused at the first infinity or NaN, wherever it lies:
/// inside a block of sixteen, on a block's edge, or in the tail after the last whole block.
@Suite struct WireFormatTests {
    static let specials: [Float] = [.nan, .infinity, -.infinity, -.nan, Float(bitPattern: 0x7FC0_0001)]

    @Test(arguments: [0, 1, 15, 16, 17, 31, 32, 150_527, 150_528, 150_540])
    func theFirstNonFiniteFloatIsFoundWhereverItLies(index: Int) {
        for special in Self.specials {
            var values = (0..<150_541).map { Float($0 % 97) * -1e30 }
            if index < 150_540 { values[150_540] = .nan }  // a later one must not be the one reported
            values[index] = special
            let found = WireFormat.firstNonFinite(littleEndianFloats: values.withUnsafeBytes { Data($0) })
            #expect(found?.index == index)
            #expect(found.map { $0.value.bitPattern == special.bitPattern } == true)
        }
    }

    @Test(arguments: [0, 1, 16, 17, 150_528])
    func finiteFloatsPassEvenAtTheirExtremes(count: Int) {
        let extremes: [Float] = [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, -0.0, 0]
        let values = (0..<count).map { extremes[$0 % extremes.count] }
        #expect(WireFormat.firstNonFinite(littleEndianFloats: values.withUnsafeBytes { Data($0) }) == nil)
    }

    @Test func bytesOffTheStartOfTheirStorageAreReadWhereTheyLie() {
        // A slice of a body: the tensor starts after a JSON header, at an odd offset.
        var body = Data("{\"x\":1}".utf8)
        var values = [Float](repeating: 1, count: 40)
        values[33] = .infinity
        values.withUnsafeBytes { body.append(contentsOf: $0) }
        let tensor = body.suffix(from: body.startIndex + 7)
        #expect(WireFormat.firstNonFinite(littleEndianFloats: tensor)?.index == 33)
    }
}

/// Which paths `InferChannelHandler` answers as KServe `infer`, and for which model and version.
@Suite struct InferPathTests {
    @Test(arguments: [
        ("/v2/models/tiny/infer", "tiny", nil),
        ("/v2/models/tiny/infer?debug=1", "tiny", nil),
        ("/v2/models/tiny/versions/2/infer", "tiny", "2"),
        ("/v2/models/my%20model/versions/v%2F1/infer", "my model", "v/1"),
    ] as [(String, String, String?)])
    func inferPathsNameTheirModel(path: String, model: String, version: String?) {
        let target = KServeInfer.target(of: path)
        #expect(target?.model == model && target?.version == version)
    }

    @Test(arguments: [
        "/v2/models/infer", "/v2/models//infer", "/v2/models/tiny/infer/", "/v2/models/tiny/ready", "/v2/models/tiny/versions/infer",
        "/v2/models/tiny/versions//infer", "/v2/models/tiny/other/2/infer", "/v1/models/tiny/infer", "/v2/models/a/b/c/d/infer", "/v2/models/%zz/infer",
    ])
    func otherPathsGoToTheRouter(path: String) {
        #expect(KServeInfer.target(of: path) == nil)
    }
}
