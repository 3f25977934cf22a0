import COpenCVCodec

/// The channel order a model expects.
public enum ChannelOrder: String, Sendable, Codable {
    case rgb = "RGB"
    case bgr = "BGR"
}

/// How libjpeg-turbo decodes JPEGs: exactly (the accurate inverse DCT and fancy chroma
/// upsampling, what OpenCV's reader does), or with its faster, less exact options. What each
/// costs in accuracy and gains in speed is measured in docs/PERFORMANCE.md.
public enum JPEGDecoding: String, Sendable, Codable, CaseIterable {
    case exact
    /// Merged chroma upsampling: each chroma sample covers its 2×1 or 2×2 pixels.
    case fastUpsampling = "fast-upsampling"
    /// The fast integer inverse DCT (JDCT_IFAST).
    case fastIDCT = "fast-idct"
    /// Both.
    case fast

    var fastUpsampling: Bool { self == .fastUpsampling || self == .fast }
    var fastIDCT: Bool { self == .fastIDCT || self == .fast }
}

/// What the decoder may do with any image, whatever model it is for.
public struct DecoderSettings: Sendable, Equatable {
    /// Images whose header claims more pixels are refused before any pixel is allocated.
    public var maxPixels: Int
    public var jpeg: JPEGDecoding

    public init(maxPixels: Int = PreprocessSpec.defaultMaxPixels, jpeg: JPEGDecoding = .exact) {
        (self.maxPixels, self.jpeg) = (maxPixels, jpeg)
    }
}

/// How an image becomes one model input: resize the short side, crop the centre, then
/// normalize each channel as (pixel − mean) / std with pixels in 0...255.
public struct PreprocessSpec: Sendable, Equatable {
    /// Refuses decompression bombs before any pixel is allocated; 128 MP admits every camera.
    public static let defaultMaxPixels = 1 << 27

    public var resizeShortSide: Int
    public var cropWidth: Int
    public var cropHeight: Int
    public var mean: [Float]
    public var std: [Float]
    public var channelOrder: ChannelOrder
    /// Decode large JPEGs at 1/2, 1/4 or 1/8 scale when the short side stays at or above the resize target.
    public var allowDCTReduction: Bool
    /// Decode only the JPEG rows and columns the centre crop reads; the tensor is the same.
    public var allowCropDecoding: Bool
    public var jpeg: JPEGDecoding
    public var maxPixels: Int

    public init(
        resizeShortSide: Int, cropWidth: Int, cropHeight: Int, mean: [Float], std: [Float],
        channelOrder: ChannelOrder = .rgb, allowDCTReduction: Bool = true, allowCropDecoding: Bool = true, jpeg: JPEGDecoding = .exact,
        maxPixels: Int = PreprocessSpec.defaultMaxPixels
    ) {
        precondition(mean.count == 3 && std.count == 3, "mean and std need one value per channel")
        self.resizeShortSide = resizeShortSide
        self.cropWidth = cropWidth
        self.cropHeight = cropHeight
        self.mean = mean
        self.std = std
        self.channelOrder = channelOrder
        self.allowDCTReduction = allowDCTReduction
        self.allowCropDecoding = allowCropDecoding
        self.jpeg = jpeg
        self.maxPixels = maxPixels
    }

    /// Floats in one preprocessed sample (3 × crop height × crop width).
    public var tensorElementCount: Int { 3 * cropWidth * cropHeight }

    var native: vp_preprocess_spec {
        var spec = vp_preprocess_spec()
        spec.resize_short_side = Int32(clamping: resizeShortSide)
        spec.crop_width = Int32(clamping: cropWidth)
        spec.crop_height = Int32(clamping: cropHeight)
        spec.mean = (mean[0], mean[1], mean[2])
        spec.std = (std[0], std[1], std[2])
        spec.channels_bgr = channelOrder == .bgr ? 1 : 0
        spec.allow_dct_reduction = allowDCTReduction ? 1 : 0
        spec.allow_crop_decoding = allowCropDecoding ? 1 : 0
        spec.jpeg_fast_upsampling = jpeg.fastUpsampling ? 1 : 0
        spec.jpeg_fast_idct = jpeg.fastIDCT ? 1 : 0
        spec.max_pixels = Int64(maxPixels)
        return spec
    }
}
