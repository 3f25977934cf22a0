import Foundation
import ImagePipeline
import TestSupport
import Testing

@Suite struct BadInputTests {
    @Test("bad files give the right typed error", arguments: [
        ("empty.jpg", ImageDecodingError.Kind.empty), ("truncated.jpg", .truncated), ("truncated.png", .truncated),
        ("garbage.bin", .unsupportedFormat), ("text.txt", .unsupportedFormat), ("bomb.png", .tooLarge), ("bomb.jpg", .tooLarge),
    ])
    func badFixture(name: String, kind: ImageDecodingError.Kind) throws {
        let error = #expect(throws: ImageDecodingError.self) { try preprocess(try Fixtures.image(name)) }
        #expect(error?.kind == kind, "\(error?.message ?? "")")
        #expect(error?.message.isEmpty == false)
    }

    @Test func pixelLimitIsCheckedBeforeDecoding() throws {
        var spec = efficientNetSpec
        spec.maxPixels = 100_000
        let error = #expect(throws: ImageDecodingError.self) { try preprocess(try Fixtures.image("cat.jpg"), spec: spec) }
        #expect(error?.kind == .tooLarge)
        #expect(error?.message.contains("451x300") == true, "\(error?.message ?? "")")
    }

    @Test func bombsNameTheirClaimedSize() throws {
        let error = #expect(throws: ImageDecodingError.self) { try preprocess(try Fixtures.image("bomb.png")) }
        #expect(error?.message.contains("100000x100000") == true, "\(error?.message ?? "")")
    }

    @Test func corruptPNGDataIsRefused() throws {
        var data = try Fixtures.image("cat.png")
        let middle = data.count / 2
        for offset in middle..<middle + 64 { data[offset] ^= 0x5A }
        let error = #expect(throws: ImageDecodingError.self) { try preprocess(data) }
        #expect(error?.kind == .corrupt)
    }

    @Test func gifIsRefusedByName() throws {
        let error = #expect(throws: ImageDecodingError.self) { try preprocess(Data("GIF89a\u{1}\0\u{1}\0".utf8)) }
        #expect(error?.kind == .unsupportedFormat && error?.message.contains("GIF") == true)
    }

    @Test func extremeAspectRatioIsRefused() throws {
        // A PNG header claiming 20000×10, refused before any pixel is decoded.
        var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13])
        png += Data("IHDR".utf8) + Data([0, 0, 0x4E, 0x20, 0, 0, 0, 10, 8, 2, 0, 0, 0, 0, 0, 0, 0])
        png += Data([0, 0, 0, 0]) + Data("IEND".utf8) + Data([0xAE, 0x42, 0x60, 0x82])
        let error = #expect(throws: ImageDecodingError.self) { try preprocess(png) }
        #expect(error?.kind == .tooLarge && error?.message.contains("aspect ratio") == true, "\(error?.message ?? "")")
    }

    @Test func truncatedHeaderIsTruncated() throws {
        let data = try Fixtures.image("cat.jpg").prefix(100)
        let error = #expect(throws: ImageDecodingError.self) { try preprocess(Data(data)) }
        #expect(error?.kind == .truncated)
    }

    @Test func wrongOutputSizeIsAnInvalidArgument() throws {
        let image = try Fixtures.image("cat.jpg")
        var tensor = [Float](repeating: 0, count: 10)
        let error = #expect(throws: ImageDecodingError.self) {
            try image.withUnsafeBytes { bytes in
                try tensor.withUnsafeMutableBufferPointer { try ImagePreprocessor.preprocess(bytes, spec: efficientNetSpec, into: $0) }
            }
        }
        #expect(error?.kind == .invalidArgument)
    }
}
