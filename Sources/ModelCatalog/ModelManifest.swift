/// Everything visionpool needs to know about one model, read from `Models/NAME.json`.
public struct ModelManifest: Codable, Sendable, Equatable {
    /// Where a model's weights came from: users are told plainly when they mean nothing.
    public enum Weights: String, Codable, Sendable {
        case pretrained
        case synthetic
    }

    public struct Input: Codable, Sendable, Equatable {
        public var name: String
        /// Only NCHW is supported.
        public var layout: String
        /// One sample's shape, without the batch: [channels, height, width].
        public var shape: [Int]
        public var datatype: String

        public init(name: String, layout: String = "NCHW", shape: [Int], datatype: String = "FP32") {
            self.name = name
            self.layout = layout
            self.shape = shape
            self.datatype = datatype
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable {
            /// Raw scores: softmax turns them into probabilities.
            case logits
            case probabilities
        }

        public var name: String
        public var kind: Kind
        public var classes: Int

        public init(name: String, kind: Kind, classes: Int) {
            self.name = name
            self.kind = kind
            self.classes = classes
        }
    }

    public struct Preprocessing: Codable, Sendable, Equatable {
        public enum ChannelOrder: String, Codable, Sendable {
            case rgb = "RGB"
            case bgr = "BGR"
        }

        public var resizeShortSide: Int
        /// Centre crop as [height, width].
        public var crop: [Int]
        /// Per channel, in the model's channel order, in pixel units (0...255).
        public var mean: [Float]
        public var std: [Float]
        public var channelOrder: ChannelOrder

        public init(resizeShortSide: Int, crop: [Int], mean: [Float], std: [Float], channelOrder: ChannelOrder) {
            self.resizeShortSide = resizeShortSide
            self.crop = crop
            self.mean = mean
            self.std = std
            self.channelOrder = channelOrder
        }

        /// torchvision's ImageNet convention: resize 256, crop 224, ImageNet mean and std, RGB.
        public static let imagenet = Preprocessing(
            resizeShortSide: 256, crop: [224, 224], mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375],
            channelOrder: .rgb)
        /// TensorFlow's EfficientNet-Lite convention: (pixel − 127) / 128, RGB.
        public static let tensorflow = Preprocessing(
            resizeShortSide: 256, crop: [224, 224], mean: [127, 127, 127], std: [128, 128, 128], channelOrder: .rgb)
        /// Caffe's convention: BGR, ImageNet mean subtracted, no scaling.
        public static let caffe = Preprocessing(
            resizeShortSide: 256, crop: [224, 224], mean: [103.939, 116.779, 123.68], std: [1, 1, 1], channelOrder: .bgr)

        /// Named presets for `models add --preprocess`.
        public static let presets: [String: Preprocessing] = ["imagenet": imagenet, "tensorflow": tensorflow, "caffe": caffe]
    }

    /// The arithmetic the model's weights are stored for.
    public enum Precision: String, Codable, Sendable {
        case f32
        /// Quantized (QuantizeLinear/DequantizeLinear pairs): the engine must run int8 kernels.
        case int8
    }

    /// How an int8 model was made from its f32 model, and how closely it agrees with it;
    /// written by tools/models/quantize.py, shown by `visionpool models`.
    public struct Quantization: Codable, Sendable, Equatable {
        /// The inputs a quantization was calibrated or validated on.
        public struct InputSet: Codable, Sendable, Equatable {
            public var inputs: Int
            /// The distinct photos the inputs were made from.
            public var photos: Int
            public var source: String?
        }

        /// The OpenVINO run the figures were measured on.
        public struct Measurement: Codable, Sendable, Equatable {
            public var version: String
            public var cpuFlags: String
            /// Executed convolution and fully connected layers by kernel precision, e.g. ["int8": 53, "bf16": 1].
            public var kernels: [String: Int]
            /// The precision the int8 model's float layers ran at: OpenVINO's choice, or f32 after a fallback.
            public var precision: String?
            /// Why OpenVINO's own choice could not run the model on the quantizing machine, if it could not.
            public var precisionFallback: String?
        }

        public var sourceModel: String
        /// e.g. "NNCF 3.4.0".
        public var tool: String
        public var recipe: String
        public var calibration: InputSet
        public var validation: InputSet
        /// Fraction of validation inputs whose top class matches the f32 model's.
        public var top1Agreement: Double
        /// Mean fraction of the f32 model's top 5 classes also in the int8 model's top 5.
        public var top5Overlap: Double
        /// The least top-1 agreement the quantization was allowed to reach.
        public var minAgreement: Double
        /// The f32 model's own agreement with f32 at OpenVINO's default precision (bf16 on some CPUs): context for the figure above.
        public var f32AtDefaultPrecisionTop1Agreement: Double?
        public var openvino: Measurement?
    }

    public var name: String
    public var description: String
    /// The ONNX file, relative to the manifest's folder unless absolute.
    public var file: String
    public var weights: Weights
    public var provenance: String
    public var licence: String
    public var input: Input
    public var output: Output
    public var preprocessing: Preprocessing
    /// One label per line, relative to the manifest's folder unless absolute.
    public var labels: String?
    /// Absent for f32 models.
    public var precision: Precision?
    /// Present for int8 models.
    public var quantization: Quantization?

    public var isQuantized: Bool { precision == .int8 }

    public init(
        name: String, description: String, file: String, weights: Weights, provenance: String, licence: String,
        input: Input, output: Output, preprocessing: Preprocessing, labels: String?
    ) {
        self.name = name
        self.description = description
        self.file = file
        self.weights = weights
        self.provenance = provenance
        self.licence = licence
        self.input = input
        self.output = output
        self.preprocessing = preprocessing
        self.labels = labels
    }

    /// Every problem with the manifest, in words a user can act on; empty when it is usable.
    public var problems: [String] {
        var problems: [String] = []
        if !ModelCatalog.isValidName(name) {
            problems.append("name \"\(name)\" must be 1–64 characters of a–z, 0–9, '.', '_' or '-', starting with a letter or digit")
        }
        if input.layout != "NCHW" { problems.append("input layout \(input.layout) is not supported; only NCHW is") }
        if input.datatype != "FP32" { problems.append("input datatype \(input.datatype) is not supported; only FP32 is") }
        if input.shape.count != 3 || input.shape[0] != 3 || input.shape.contains(where: { $0 < 1 }) {
            problems.append("input shape \(input.shape) must be [3, height, width]")
        }
        if output.classes < 1 { problems.append("output classes must be at least 1") }
        let p = preprocessing
        if p.crop.count != 2 || p.crop.contains(where: { $0 < 1 }) {
            problems.append("preprocessing crop \(p.crop) must be [height, width]")
        } else {
            if input.shape.count == 3 && Array(input.shape[1...]) != p.crop {
                problems.append("preprocessing crop \(p.crop) differs from the input's height and width \(Array(input.shape.dropFirst()))")
            }
            if p.resizeShortSide < p.crop.max()! { problems.append("resize_short_side \(p.resizeShortSide) is smaller than the crop \(p.crop)") }
        }
        if p.mean.count != 3 || p.std.count != 3 { problems.append("preprocessing mean and std need 3 values each") }
        if p.std.contains(where: { !($0 > 0) }) { problems.append("preprocessing std values must be positive") }
        if isQuantized && quantization == nil {
            problems.append("an int8 model's manifest records its quantization (tools/models/quantize.py writes it)")
        }
        return problems
    }
}
