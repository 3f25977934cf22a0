import SystemSupport
import COpenVINO
import Foundation

/// OpenVINO's CPU plugin (`vp_ov_engine_*` over `ov_core_compile_model_props` and host-pointer tensors).
public final class OpenVINOEngine: InferenceEngine {
    public let model: EngineModel
    public let engineDescription: EngineDescription
    private let engine: OpaquePointer
    /// Counted at load for an int8 model, else on the first `kernelCensus()`.
    private var census: KernelCensus?

    public init(model: EngineModel, options: EngineOptions) throws(EngineError) {
        if let cache = options.cacheDirectory {
            try? FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        }
        var created: OpaquePointer?
        func compile(cacheDirectory: URL?) -> String? {
            model.file.path.withCString { path in
                withOptionalCString(options.precision == .automatic ? nil : options.precision.rawValue) { precision in
                    withOptionalCString(cacheDirectory?.path) { cache in
                        var native = vp_ov_options(model_path: path, threads: Int32(clamping: options.threads), precision: precision, cache_dir: cache)
                        return callReportingMessage { vp_ov_engine_create(&native, &created, $0, $1) }
                    }
                }
            }
        }
        var failure = compile(cacheDirectory: options.cacheDirectory)
        // Workers (and other servers) compiling the same model at once write the same cache
        // file, and OpenVINO fails the loser's compile ("cannot set permissions" on a blob
        // another process has just replaced). The model itself is fine: compile it without the cache.
        if failure != nil, options.cacheDirectory != nil { failure = compile(cacheDirectory: nil) }
        if let failure { throw EngineError(.loadFailed, failure) }
        let engine = created!
        let inputs = vp_ov_engine_sample_input_count(engine), outputs = vp_ov_engine_sample_output_count(engine)
        guard inputs == model.sampleInputCount, outputs == model.outputCount else {
            vp_ov_engine_destroy(engine)
            throw EngineError(
                .incompatibleModel,
                "\(model.file.lastPathComponent) takes \(inputs) input and gives \(outputs) output values per sample; the manifest says \(model.sampleInputCount) and \(model.outputCount)")
        }
        var precision = String(cString: vp_ov_engine_precision(engine))
        if model.quantized {
            do {
                let census = try Self.census(of: engine)
                try census.requireInt8(engine: "OpenVINO", model: model)
                precision = census.quantizedPrecision(rest: precision)
                self.census = census
            } catch {
                vp_ov_engine_destroy(engine)
                throw error
            }
        }
        self.engine = engine
        self.model = model
        engineDescription = EngineDescription(
            kind: .openvino, precision: precision,
            threads: options.threads > 0 ? options.threads : CPUBudget.current().count, version: OpenVINOEngine.version, kernels: census)
    }

    /// The kernels of the model compiled once more with profiling (`vp_ov_engine_kernel_census`), counted once.
    public func kernelCensus() throws(EngineError) -> KernelCensus? {
        if let census { return census }
        census = try Self.census(of: engine)
        return census
    }

    private static func census(of engine: OpaquePointer) throws(EngineError) -> KernelCensus {
        var native = vp_ov_kernel_census()
        let failure = callReportingMessage { vp_ov_engine_kernel_census(engine, &native, $0, $1) }
        if let failure { throw EngineError(.loadFailed, failure) }
        return KernelCensus(
            int8: Int(native.int8), bf16: Int(native.bf16), f16: Int(native.f16), f32: Int(native.f32), other: Int(native.other),
            instructionSets: [
                "amx": Int(native.amx), "avx512": Int(native.avx512), "avx2": Int(native.avx2), "sse41": Int(native.sse41),
                "mlas": Int(native.mlas), "unnamed": Int(native.unnamed_isa),
            ])
    }

    /// The precision OpenVINO picks on this CPU when left to choose (`vp_ov_default_precision`):
    /// "bf16" where the CPU has AVX512_BF16 or AMX, else "f32"; nil if OpenVINO cannot say.
    public static let defaultPrecision: String? = {
        var precision = [CChar](repeating: 0, count: 16)
        let failure = callReportingMessage { vp_ov_default_precision(&precision, precision.count, $0, $1) }
        return failure == nil ? String(decoding: precision.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }()

    deinit { vp_ov_engine_destroy(engine) }

    public func infer(batch: Int, input: UnsafeMutableBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>) throws(EngineError) {
        let failure = callReportingMessage {
            vp_ov_engine_infer(engine, Int32(clamping: batch), input.baseAddress, input.count, output.baseAddress, output.count, $0, $1)
        }
        if let failure { throw EngineError(.inferenceFailed, failure) }
    }

    /// The addresses OpenVINO's tensors for `batch` read and write: the proof that they are the caller's memory.
    public func boundBuffers(batch: Int) -> (input: UnsafeRawPointer?, output: UnsafeRawPointer?) {
        (vp_ov_engine_bound_input(engine, Int32(clamping: batch)), vp_ov_engine_bound_output(engine, Int32(clamping: batch)))
    }

    /// The OpenVINO runtime's build number.
    public static var version: String { String(cString: vp_ov_version()) }
}

/// The first input and output of an ONNX file, read by OpenVINO without compiling it.
public struct ModelSignature: Sendable, Equatable {
    public var inputName: String
    /// -1 marks a dynamic dimension.
    public var inputShape: [Int]
    public var outputName: String
    public var outputShape: [Int]
    public var inputCount: Int
    public var outputCount: Int

    /// Reads `file` with `vp_ov_inspect`.
    public init(file: URL) throws(EngineError) {
        var io = vp_ov_model_io()
        let failure = callReportingMessage { message, capacity in vp_ov_inspect(file.path, &io, message, capacity) }
        if let failure { throw EngineError(.loadFailed, failure) }
        inputName = withUnsafeBytes(of: io.input_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        outputName = withUnsafeBytes(of: io.output_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        inputShape = withUnsafeBytes(of: io.input_shape) { Array($0.bindMemory(to: Int64.self).prefix(Int(io.input_rank))).map(Int.init) }
        outputShape = withUnsafeBytes(of: io.output_shape) { Array($0.bindMemory(to: Int64.self).prefix(Int(io.output_rank))).map(Int.init) }
        inputCount = Int(io.input_count)
        outputCount = Int(io.output_count)
    }
}

private func withOptionalCString<Result>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> Result) -> Result {
    guard let string else { return body(nil) }
    return string.withCString(body)
}
