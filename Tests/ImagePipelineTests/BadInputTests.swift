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

    @Test func jpegBytesOutsideMarkersAreRefused() throws {
        // A frame header with no 0xFF before it: libjpeg would skip it, so the probe must not trust it.
        let jpeg = Data([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10, 0x00, 0x10, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xD9])
        let error = #expect(throws: ImageDecodingError.self) { try preprocess(jpeg) }
        #expect(error?.kind == .corrupt, "\(error?.message ?? "")")
    }

    @Test func tiffDuplicateTagsCountAsLibtiffReadsThem() throws {
        // ImageWidth twice: libtiff keeps the first (32768), which makes a 2048:1 image.
        var tiff = Data("II*\0".utf8) + Data([8, 0, 0, 0, 3, 0])
        for (tag, value) in [(256, 32768), (256, 16), (257, 16)] {
            tiff += Data([UInt8(tag & 0xFF), UInt8(tag >> 8), 3, 0, 1, 0, 0, 0, UInt8(value & 0xFF), UInt8(value >> 8), 0, 0])
        }
        tiff += Data([0, 0, 0, 0])
        let error = #expect(throws: ImageDecodingError.self) { try preprocess(tiff) }
        #expect(error?.kind == .tooLarge && error?.message.contains("32768x16") == true, "\(error?.message ?? "")")
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
