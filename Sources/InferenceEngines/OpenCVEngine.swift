import SystemSupport
import COpenCVDNN

/// OpenCV's dnn module (`vp_cvdnn_*`): reads the input in place; its scores are copied out,
/// since OpenCV owns its output blob.
public final class OpenCVEngine: InferenceEngine {
    public let model: EngineModel
    public let engineDescription: EngineDescription
    private let net: OpaquePointer

    public init(model: EngineModel, options: EngineOptions) throws(EngineError) {
        guard options.precision == .automatic || options.precision == .f32 else {
            throw EngineError(.unsupportedOption, "the opencv engine runs at f32 only; \(options.precision.rawValue) needs --engine openvino")
        }
        guard !model.quantized || EngineKind.opencv.runsInt8Models else {
            throw EngineError(
                .incompatibleModel,
                "\(model.file.lastPathComponent) is an int8 (QDQ) model; the opencv engine would run it dequantized at f32 and lose its speed: use --engine openvino or onnxruntime")
        }
        guard model.sampleShape.count == 3 else {
            throw EngineError(.incompatibleModel, "the opencv engine needs a [channels, height, width] input, not \(model.sampleShape)")
        }
        var created: OpaquePointer?
        let failure = callReportingMessage { vp_cvdnn_create(model.file.path, Int32(clamping: options.threads), &created, $0, $1) }
        if let failure { throw EngineError(.loadFailed, failure) }
        net = created!
        self.model = model
        engineDescription = EngineDescription(
            kind: .opencv, precision: "f32", threads: options.threads > 0 ? options.threads : CPUBudget.current().count, version: String(cString: vp_cvdnn_version()))
    }

    deinit { vp_cvdnn_destroy(net) }

    public func infer(batch: Int, input: UnsafeMutableBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>) throws(EngineError) {
        try model.checkBuffers(batch: batch, input: input.count, output: output.count)
        let shape = model.sampleShape.map { Int32(clamping: $0) }
        let failure = callReportingMessage {
            vp_cvdnn_infer(net, input.baseAddress, Int32(clamping: batch), shape[0], shape[1], shape[2], output.baseAddress, output.count, $0, $1)
        }
        if let failure { throw EngineError(.inferenceFailed, failure) }
    }

    /// OpenCV keeps its blobs to itself: where they live cannot be asked.
    public func boundBuffers(batch: Int) -> (input: UnsafeRawPointer?, output: UnsafeRawPointer?) { (nil, nil) }
}
