import Foundation
import ImagePipeline
import TestSupport
import Testing

let efficientNetSpec = PreprocessSpec(
    resizeShortSide: 256, cropWidth: 224, cropHeight: 224, mean: [127, 127, 127], std: [128, 128, 128])

func preprocess(_ image: Data, spec: PreprocessSpec = efficientNetSpec) throws(ImageDecodingError) -> (PreprocessReport, [Float]) {
    var tensor = [Float](repeating: .nan, count: spec.tensorElementCount)
    let report = try image.withUnsafeBytes { bytes in
        tensor.withUnsafeMutableBufferPointer { output in
            Result { () throws(ImageDecodingError) in try ImagePreprocessor.preprocess(bytes, spec: spec, into: output) }
        }
    }.get()
    return (report, tensor)
}

@Suite struct DecoderPathTests {
    @Test("header probe reads format and size", arguments: [
        ("cat.jpg", ImageFormat.jpeg, 451, 300), ("cat.png", .png, 451, 300), ("cat.bmp", .bmp, 451, 300),
        ("cat.webp", .webp, 451, 300), ("cat.tiff", .tiff, 451, 300), ("cat_exif6.jpg", .jpeg, 300, 451),
        ("big_cat.jpg", .jpeg, 4000, 2660), ("cat_16bit.png", .png, 451, 300),
    ])
    func probe(name: String, format: ImageFormat, width: Int, height: Int) throws {
        let info = try Fixtures.image(name).withUnsafeBytes { try ImagePreprocessor.probe($0) }
        #expect(info == ImageInfo(format: format, width: width, height: height))
    }

    @Test("JPEGs decode at the largest DCT reduction that keeps the short side ≥ 256", arguments: [
        ("big_cat.jpg", 8, 500, 333), ("mid_cat.jpg", 2, 550, 366), ("astronaut.jpg", 2, 256, 256),
        ("cat.jpg", 1, 451, 300), ("coffee.jpg", 1, 600, 400),
    ])
    func dctReduction(name: String, scale: Int, width: Int, height: Int) throws {
        let (report, _) = try preprocess(try Fixtures.image(name))
        #expect(report.dctScale == scale)
        #expect(report.decodedWidth == width && report.decodedHeight == height)
    }

    @Test func aCMYKJPEGTakesOpenCVsReaderAndLooksTheSame() throws {
        let (cmykReport, cmyk) = try preprocess(try Fixtures.image("cat_cmyk.jpg"))
        let (_, rgb) = try preprocess(try Fixtures.image("cat.jpg"))
        #expect(cmykReport.decodedWidth == 451 && cmykReport.decodedHeight == 300)
        let meanGreyLevels = zip(cmyk, rgb).map { abs($0 - $1) * 128 }.reduce(0, +) / Float(rgb.count)
        #expect(meanGreyLevels < 4, "mean difference \(meanGreyLevels) grey levels")
    }

    @Test func dctReductionCanBeTurnedOff() throws {
        var spec = efficientNetSpec
        spec.allowDCTReduction = false
        let (report, _) = try preprocess(try Fixtures.image("big_cat.jpg"), spec: spec)
        #expect(report.dctScale == 1 && report.decodedWidth == 4000)
    }

    /// libjpeg-turbo decodes only the rows and columns the centre crop reads: the same tensor
    /// to the bit as decoding every pixel, from fewer decoded pixels. Every JPEG fixture, at
    /// each DCT scale it takes, landscape, portrait, progressive and grey; rotated ones
    /// (EXIF) are decoded whole and must match too.
    @Test("decoding only the crop's region gives the tensor a full decode gives", arguments: [
        "cat.jpg", "big_cat.jpg", "mid_cat.jpg", "astronaut.jpg", "coffee.jpg", "rocket.jpg", "cat_progressive.jpg", "cat_gray.jpg",
        "cat_exif6.jpg", "cat_cmyk.jpg",
    ])
    func cropDecodingMatchesFullDecoding(name: String) throws {
        let image = try Fixtures.image(name)
        for dct in [true, false] {
            for jpeg in JPEGDecoding.allCases {
                var full = efficientNetSpec
                full.allowDCTReduction = dct
                full.jpeg = jpeg
                full.allowCropDecoding = false
                var cropped = full
                cropped.allowCropDecoding = true
                let (fullReport, fullTensor) = try preprocess(image, spec: full)
                let (croppedReport, croppedTensor) = try preprocess(image, spec: cropped)
                #expect(croppedTensor == fullTensor, "\(name), DCT \(dct), \(jpeg)")
                #expect(fullReport.decodedPixels == fullReport.decodedWidth * fullReport.decodedHeight)
                #expect(croppedReport.decodedWidth == fullReport.decodedWidth && croppedReport.decodedHeight == fullReport.decodedHeight)
                let upright = !name.contains("exif") && !name.contains("cmyk")
                if upright && fullReport.decodedWidth != fullReport.decodedHeight {
                    #expect(croppedReport.decodedPixels < fullReport.decodedPixels, "\(name), DCT \(dct): \(croppedReport.decodedPixels) pixels decoded")
                }
            }
        }
    }

    /// libjpeg-turbo's fast options take effect (the tensor changes) and change grey levels, not the picture.
    @Test("fast JPEG decoding is close to the exact decode", arguments: JPEGDecoding.allCases.filter { $0 != .exact })
    func fastJPEGDecoding(jpeg: JPEGDecoding) throws {
        let image = try Fixtures.image("cat.jpg")
        var fast = efficientNetSpec
        fast.jpeg = jpeg
        let (_, exactTensor) = try preprocess(image)
        let (_, fastTensor) = try preprocess(image, spec: fast)
        let meanGreyLevels = zip(fastTensor, exactTensor).map { abs($0 - $1) * 128 }.reduce(0, +) / Float(exactTensor.count)
        #expect(fastTensor != exactTensor, "\(jpeg) decoded the same pixels as exact")
        #expect(meanGreyLevels < 2, "\(jpeg): mean difference \(meanGreyLevels) grey levels")
    }

    @Test("EXIF orientation turns the stored pixels upright", arguments: ["cat_exif3.jpg", "cat_exif6.jpg", "cat_exif8.jpg"])
    func exifOrientation(name: String) throws {
        let (report, tensor) = try preprocess(try Fixtures.image(name))
        let (_, upright) = try preprocess(try Fixtures.image("cat.jpg"))
        #expect(report.decodedWidth == 451 && report.decodedHeight == 300)
        // Same picture, re-encoded: close on average, unlike a rotated or flipped one.
        let meanDifference = zip(tensor, upright).map { abs($0 - $1) }.reduce(0, +) / Float(tensor.count)
        #expect(meanDifference < 0.02, "mean difference \(meanDifference)")
    }

    @Test("grey, alpha, palette and 16-bit inputs become the same 3-channel picture", arguments: [
        "cat.png", "cat_rgba.png", "cat_palette.png", "cat_16bit.png", "cat.bmp", "cat.webp", "cat.tiff",
    ])
    func colourConversions(name: String) throws {
        let (_, tensor) = try preprocess(try Fixtures.image(name))
        let (_, reference) = try preprocess(try Fixtures.image("cat.png"))
        let worst = zip(tensor, reference).map { abs($0 - $1) * 128 }.max()!
        // Lossless formats carry the same pixels; a palette quantizes them.
        #expect(worst <= (name == "cat_palette.png" ? 64 : 1), "largest difference \(worst) grey levels")
    }

    @Test func greyscaleHasEqualChannels() throws {
        for name in ["cat_gray.png", "cat_gray16.png", "cat_gray.jpg"] {
            let (_, tensor) = try preprocess(try Fixtures.image(name))
            let plane = 224 * 224
            #expect(tensor[0..<plane] == tensor[plane..<2 * plane] && tensor[plane..<2 * plane] == tensor[2 * plane..<3 * plane], "\(name)")
        }
    }

    @Test func bgrReversesChannels() throws {
        var bgr = efficientNetSpec
        bgr.channelOrder = .bgr
        let (_, rgbTensor) = try preprocess(try Fixtures.image("cat.png"))
        let (_, bgrTensor) = try preprocess(try Fixtures.image("cat.png"), spec: bgr)
        let plane = 224 * 224
        #expect(Array(rgbTensor[0..<plane]) == Array(bgrTensor[2 * plane..<3 * plane]))
        #expect(Array(rgbTensor[2 * plane..<3 * plane]) == Array(bgrTensor[0..<plane]))
    }

    @Test func tinyImagesAreUpscaled() throws {
        let (report, tensor) = try preprocess(try Fixtures.image("tiny.png"))
        #expect(report.decodedWidth == 1 && tensor.allSatisfy { $0.isFinite })
    }
}
