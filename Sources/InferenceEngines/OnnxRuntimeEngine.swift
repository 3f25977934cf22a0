import COnnxRuntime
import Foundation
import SystemSupport

/// ONNX Runtime (`vp_ort_*`), the engine of the Python tutorials: one session, `threads`
/// intra-op threads, sequential execution, every graph optimization; the input and output are
/// the caller's memory, wrapped as tensors in place and bound to the session. On
/// `--device cuda:N` the GPU build runs the model through its CUDA execution provider and
/// copies the input to the GPU from that memory and the scores back into it.
public final class OnnxRuntimeEngine: InferenceEngine {
    public let model: EngineModel
    public let engineDescription: EngineDescription
    private let engine: OpaquePointer
    private let device: Device
    /// The kernels an int8 model's run at load chose; nil for an f32 model, which is not profiled.
    private let kernels: KernelCensus?
    /// The CUDA provider's options as ONNX Runtime took them ("key=value;…"); empty on the CPU.
    public let providerOptions: String

    public init(model: EngineModel, options: EngineOptions) throws(EngineError) {
        guard options.precision == .automatic || options.precision == .f32 else {
            throw EngineError(.unsupportedOption, "the onnxruntime engine runs the model's own arithmetic (f32, or int8 for QDQ models); \(options.precision.rawValue) needs --engine openvino")
        }
        var library: String?, cudaDevice: Int32 = -1
        if case .cuda(let index) = options.device {
            guard !model.quantized else {
                throw EngineError(
                    .unsupportedOption, "\(model.file.lastPathComponent) is an int8 (QDQ) model, which runs its int8 kernels on the CPU engines; on CUDA run its f32 model")
            }
            let cuda = CUDAEnvironment()
            try cuda.loadLibraries()
            (library, cudaDevice) = (cuda.onnxRuntimeLibrary.path, Int32(index))
        }
        let threads = options.threads > 0 ? options.threads : CPUBudget.current().count
        // An int8 model is profiled through one run at load, to prove ONNX Runtime kept its
        // quantization; the profiler stops after that run.
        let profileFolder = model.quantized ? FileManager.default.temporaryDirectory.appendingPathComponent("visionpool-ort-\(UUID().uuidString)") : nil
        if let profileFolder { try? FileManager.default.createDirectory(at: profileFolder, withIntermediateDirectories: true) }
        defer { if let profileFolder { try? FileManager.default.removeItem(at: profileFolder) } }
        var created: OpaquePointer?
        let failure = withCStrings([library, model.file.path, profileFolder?.appendingPathComponent("census").path]) { paths in
            var native = vp_ort_options(
                library_path: paths[0], model_path: paths[1], threads: Int32(clamping: threads), allow_spinning: options.spinning ? 1 : 0,
                profile_prefix: paths[2], cuda_device: cudaDevice)
            return callReportingMessage { vp_ort_engine_create(&native, &created, $0, $1) }
        }
        if let failure { throw EngineError(.loadFailed, failure) }
        engine = created!
        self.model = model
        device = options.device
        self.providerOptions = String(cString: vp_ort_engine_provider_options(engine))
        let input = Self.shape(engine, vp_ort_engine_input_shape), output = Self.shape(engine, vp_ort_engine_output_shape)
        guard input.count == model.sampleShape.count + 1, zip(input.dropFirst(), model.sampleShape).allSatisfy({ $0 == -1 || $0 == $1 }),
              output.count == 2, output[1] == -1 || output[1] == model.outputCount
        else {
            vp_ort_engine_destroy(engine)
            throw EngineError(
                .incompatibleModel,
                "\(model.file.lastPathComponent) takes \(input) and gives \(output); the manifest says [N] + \(model.sampleShape) and [N, \(model.outputCount)]")
        }
        var census: KernelCensus?
        if model.quantized {
            do {
                census = try Self.profiledCensus(engine, model: model)
                try census!.requireInt8(engine: "ONNX Runtime", model: model)
            } catch {
                vp_ort_engine_destroy(engine)
                throw error
            }
        }
        kernels = census
        let precision = census?.quantizedPrecision(rest: "f32") ?? "f32"
        engineDescription = EngineDescription(
            kind: .onnxruntime, precision: precision, threads: threads, version: Self.version, device: options.device, kernels: census)
    }

    deinit { vp_ort_engine_destroy(engine) }

    /// The int8 model's census from its profiled run at load; nil for an f32 model.
    public func kernelCensus() throws(EngineError) -> KernelCensus? { kernels }

    public func infer(batch: Int, input: UnsafeMutableBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>) throws(EngineError) {
        try model.checkBuffers(batch: batch, input: input.count, output: output.count)
        // A CUDA error can leave the GPU's context unusable: the worker is replaced.
        if let failure = Self.run(engine, model: model, batch: batch, input: input.baseAddress!, output: output.baseAddress!) {
            throw EngineError(device.isGPU ? .deviceFailed : .inferenceFailed, failure)
        }
    }

    /// Runs `batch` samples through the session in place (`vp_ort_engine_infer`); the failure's message, or nil.
    private static func run(_ engine: OpaquePointer, model: EngineModel, batch: Int, input: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>) -> String? {
        let inputShape = [Int64(batch)] + model.sampleShape.map(Int64.init), outputShape = [Int64(batch), Int64(model.outputCount)]
        return callReportingMessage { message, capacity in
            vp_ort_engine_infer(engine, input, inputShape, inputShape.count, output, outputShape, outputShape.count, message, capacity)
        }
    }

    /// The CUDA execution provider's options visionpool sets besides the device (`vp_ort_cuda_options`).
    public static var cudaProviderOptions: [(key: String, value: String)] {
        var keys: UnsafePointer<UnsafePointer<CChar>?>?, values: UnsafePointer<UnsafePointer<CChar>?>?
        let count = vp_ort_cuda_options(&keys, &values)
        return (0..<count).map { (String(cString: keys![$0]!), String(cString: values![$0]!)) }
    }

    /// The data addresses of the last run's tensors, as ONNX Runtime reports them.
    public func boundBuffers(batch: Int) -> (input: UnsafeRawPointer?, output: UnsafeRawPointer?) {
        (vp_ort_engine_bound_input(engine), vp_ort_engine_bound_output(engine))
    }

    /// The loaded library's version, e.g. "1.31.1".
    public static var version: String { String(cString: vp_ort_version()) }

    /// Runs one sample of zeros under the profiler the session was created with, stops it, and
    /// counts the kernels its convolution and matrix-product nodes ran (ONNX Runtime names a
    /// node's kernel by its operator: QLinearConv, MatMulInteger… for int8; Conv, FusedConv,
    /// Gemm… for float).
    private static func profiledCensus(_ engine: OpaquePointer, model: EngineModel) throws(EngineError) -> KernelCensus {
        var input = [Float](repeating: 0, count: model.sampleInputCount), output = [Float](repeating: 0, count: model.outputCount)
        var failure = input.withUnsafeMutableBufferPointer { input in
            output.withUnsafeMutableBufferPointer { run(engine, model: model, batch: 1, input: input.baseAddress!, output: $0.baseAddress!) }
        }
        var path = ""
        if failure == nil {
            failure = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 4096) { buffer in
                let failure = callReportingMessage { vp_ort_engine_end_profiling(engine, buffer.baseAddress, buffer.count, $0, $1) }
                if failure == nil { path = String(cString: buffer.baseAddress!) }
                return failure
            }
        }
        if let failure { throw EngineError(.loadFailed, failure) }
        do {
            return try KernelCensus(onnxRuntimeProfile: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw EngineError(.loadFailed, "cannot read ONNX Runtime's profile \(path): \(error)")
        }
    }

    private static func shape(_ engine: OpaquePointer, _ read: (OpaquePointer?, UnsafeMutablePointer<Int64>?, Int) -> Int32) -> [Int] {
        var dims = [Int64](repeating: 0, count: 8)
        let rank = Int(read(engine, &dims, dims.count))
        return dims.prefix(max(0, rank)).map(Int.init)
    }
}

extension KernelCensus {
    /// Counts the kernels of the convolution and matrix-product nodes in an ONNX Runtime
    /// profile: a JSON list of events, one `<node>_kernel_time` event per node run, whose
    /// `args.op_name` names the kernel.
    init(onnxRuntimeProfile: Data) throws {
        guard let events = try JSONSerialization.jsonObject(with: onnxRuntimeProfile) as? [[String: Any]] else {
            throw EngineError(.loadFailed, "the profile is not a list of events")
        }
        self.init()
        for event in events where event["cat"] as? String == "Node" && (event["name"] as? String)?.hasSuffix("_kernel_time") == true {
            guard let op = (event["args"] as? [String: Any])?["op_name"] as? String,
                  ["Conv", "Gemm", "MatMul"].contains(where: op.contains)
            else { continue }
            if op.hasPrefix("Q") || op.contains("QLinear") || op.contains("Integer") { int8 += 1 } else { f32 += 1 }
        }
    }
}

/// Calls `body` with C strings for `strings` (nil stays nil), valid for the call.
private func withCStrings<R>(_ strings: [String?], _ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { $0.map { UnsafePointer(strdup($0)!) } }
    defer { copies.forEach { free(UnsafeMutablePointer(mutating: $0)) } }
    return copies.withUnsafeBufferPointer(body)
}
