import COnnxRuntime
import SystemSupport

/// ONNX Runtime's CPU execution provider (`vp_ort_*`), the engine of the Python tutorials:
/// one session, `threads` intra-op threads, sequential execution, every graph optimization;
/// the input and output are the caller's memory, wrapped as tensors in place.
public final class OnnxRuntimeEngine: InferenceEngine {
    public let model: EngineModel
    public let engineDescription: EngineDescription
    private let engine: OpaquePointer

    public init(model: EngineModel, options: EngineOptions) throws(EngineError) {
        guard options.precision == .automatic || options.precision == .f32 else {
            throw EngineError(.unsupportedOption, "the onnxruntime engine runs the model's own arithmetic (f32, or int8 for QDQ models); \(options.precision.rawValue) needs --engine openvino")
        }
        let threads = options.threads > 0 ? options.threads : availableCPUs().count
        var created: OpaquePointer?
        let failure = model.file.path.withCString { path in
            var native = vp_ort_options(model_path: path, threads: Int32(clamping: threads), allow_spinning: options.spinning ? 1 : 0)
            return callReportingMessage { vp_ort_engine_create(&native, &created, $0, $1) }
        }
        if let failure { throw EngineError(.loadFailed, failure) }
        engine = created!
        self.model = model
        let input = Self.shape(engine, vp_ort_engine_input_shape), output = Self.shape(engine, vp_ort_engine_output_shape)
        guard input.count == model.sampleShape.count + 1, zip(input.dropFirst(), model.sampleShape).allSatisfy({ $0 == -1 || $0 == $1 }),
              output.count == 2, output[1] == -1 || output[1] == model.outputCount
        else {
            vp_ort_engine_destroy(engine)
            throw EngineError(
                .incompatibleModel,
                "\(model.file.lastPathComponent) takes \(input) and gives \(output); the manifest says [N] + \(model.sampleShape) and [N, \(model.outputCount)]")
        }
        engineDescription = EngineDescription(
            kind: .onnxruntime, precision: model.quantized ? "int8" : "f32", threads: threads, version: Self.version)
    }

    deinit { vp_ort_engine_destroy(engine) }

    public func infer(batch: Int, input: UnsafeMutableBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>) throws(EngineError) {
        try model.checkBuffers(batch: batch, input: input.count, output: output.count)
        let inputShape = [Int64(batch)] + model.sampleShape.map(Int64.init), outputShape = [Int64(batch), Int64(model.outputCount)]
        let failure = callReportingMessage { message, capacity in
            vp_ort_engine_infer(engine, input.baseAddress, inputShape, inputShape.count, output.baseAddress, outputShape, outputShape.count, message, capacity)
        }
        if let failure { throw EngineError(.inferenceFailed, failure) }
    }

    /// The data addresses of the last run's tensors, as ONNX Runtime reports them.
    public func boundBuffers(batch: Int) -> (input: UnsafeRawPointer?, output: UnsafeRawPointer?) {
        (vp_ort_engine_bound_input(engine), vp_ort_engine_bound_output(engine))
    }

    /// The loaded library's version, e.g. "1.31.1".
    public static var version: String { String(cString: vp_ort_version()) }

    private static func shape(_ engine: OpaquePointer, _ read: (OpaquePointer?, UnsafeMutablePointer<Int64>?, Int) -> Int32) -> [Int] {
        var dims = [Int64](repeating: 0, count: 8)
        let rank = Int(read(engine, &dims, dims.count))
        return dims.prefix(max(0, rank)).map(Int.init)
    }
}
