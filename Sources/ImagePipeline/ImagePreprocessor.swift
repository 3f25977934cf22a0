import COpenCVCodec

/// Image formats recognised by their signature.
public enum ImageFormat: String, Sendable, Codable {
    case jpeg, png, bmp, webp, tiff, gif

    init?(_ format: Int32) {
        switch format {
        case Int32(VP_FORMAT_JPEG.rawValue): self = .jpeg
        case Int32(VP_FORMAT_PNG.rawValue): self = .png
        case Int32(VP_FORMAT_BMP.rawValue): self = .bmp
        case Int32(VP_FORMAT_WEBP.rawValue): self = .webp
        case Int32(VP_FORMAT_TIFF.rawValue): self = .tiff
        case Int32(VP_FORMAT_GIF.rawValue): self = .gif
        default: return nil
        }
    }
}

/// What an image's header says, read without decoding pixels.
public struct ImageInfo: Equatable, Sendable, Codable {
    public let format: ImageFormat
    /// As stored, before EXIF orientation.
    public let width: Int
    public let height: Int

    public init(format: ImageFormat, width: Int, height: Int) {
        self.format = format
        self.width = width
        self.height = height
    }
}

/// What preprocessing did, and how long each stage took.
public struct PreprocessReport: Sendable, Codable {
    public let info: ImageInfo
    /// 1, or the JPEG DCT reduction (2, 4, 8) the image was decoded at.
    public let dctScale: Int
    /// After DCT reduction and EXIF orientation.
    public let decodedWidth: Int
    public let decodedHeight: Int
    /// Pixels the decoder produced: fewer than the decoded size when it decoded only the
    /// rows and columns the centre crop reads.
    public let decodedPixels: Int
    public let decodeSeconds: Double
    /// Resize, centre crop and normalization, one pass into the tensor.
    public let preprocessSeconds: Double
}

/// Turns encoded images into model-ready NCHW float32 tensors, written into memory the caller
/// owns (later a shared-memory slot), so a tensor is written exactly once.
public enum ImagePreprocessor {
    /// Reads format and dimensions from the header only (`vp_codec_probe`).
    public static func probe(_ image: UnsafeRawBufferPointer) throws(ImageDecodingError) -> ImageInfo {
        ImageInfo(try nativeProbe(image))!
    }

    /// Bytes decoding `image` would hold at most (the decoded pixels, an oriented copy, the
    /// resized image), read from its header (`vp_codec_working_bytes`); 0 when the header
    /// cannot be read, as the decoder then refuses the image before allocating.
    public static func workingBytes(_ image: UnsafeRawBufferPointer, spec: PreprocessSpec) -> Int {
        guard var info = try? nativeProbe(image), Int64(info.width) * Int64(info.height) <= spec.maxPixels else { return 0 }
        var native = spec.native
        return Int(vp_codec_working_bytes(&info, &native))
    }

    /// Decodes `image` and writes one normalized sample into `tensor`, which must hold exactly
    /// `spec.tensorElementCount` floats (`vp_codec_preprocess`).
    public static func preprocess(
        _ image: UnsafeRawBufferPointer, spec: PreprocessSpec, into tensor: UnsafeMutableBufferPointer<Float>
    ) throws(ImageDecodingError) -> PreprocessReport {
        var native = spec.native
        var report = vp_preprocess_report()
        let status = withMessageBuffer { message, capacity in
            vp_codec_preprocess(
                image.baseAddress?.assumingMemoryBound(to: UInt8.self), image.count, &native,
                tensor.baseAddress, tensor.count, &report, message, capacity)
        }
        try check(status)
        return PreprocessReport(
            info: ImageInfo(report.info)!, dctScale: Int(report.dct_scale),
            decodedWidth: Int(report.decoded_width), decodedHeight: Int(report.decoded_height), decodedPixels: Int(report.decoded_pixels),
            decodeSeconds: report.decode_seconds, preprocessSeconds: report.preprocess_seconds)
    }

    private static func nativeProbe(_ image: UnsafeRawBufferPointer) throws(ImageDecodingError) -> vp_image_info {
        var info = vp_image_info()
        let status = withMessageBuffer { message, capacity in
            vp_codec_probe(image.baseAddress?.assumingMemoryBound(to: UInt8.self), image.count, &info, message, capacity)
        }
        try check(status)
        return info
    }

    private static func check(_ result: (vp_codec_status, String)) throws(ImageDecodingError) {
        guard result.0 == VP_CODEC_OK else { throw ImageDecodingError(status: result.0, message: result.1) }
    }

    private static func withMessageBuffer(
        _ body: (UnsafeMutablePointer<CChar>, Int) -> vp_codec_status
    ) -> (vp_codec_status, String) {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 512) { buffer in
            buffer[0] = 0
            let status = body(buffer.baseAddress!, buffer.count)
            return (status, String(cString: buffer.baseAddress!))
        }
    }
}

extension ImageInfo {
    init?(_ info: vp_image_info) {
        guard let format = ImageFormat(info.format) else { return nil }
        self.init(format: format, width: Int(info.width), height: Int(info.height))
    }
}
