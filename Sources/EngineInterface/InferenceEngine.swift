import Foundation

/// Which library runs the network.
public enum EngineKind: String, CaseIterable, Sendable, Codable {
    /// OpenVINO's CPU plugin through its C API: the fast engine.
    case openvino
    /// OpenCV's dnn module on its own CPU backend: the second opinion.
    case opencv
    /// ONNX Runtime's CPU execution provider: the engine of the Python tutorials.
    case onnxruntime
}

extension EngineKind {
    /// Whether the engine runs an int8 (QDQ) model with int8 kernels. The others refuse such a
    /// model rather than run it dequantized at f32 and lose its speed.
    public var runsInt8Models: Bool { self != .opencv }

    /// The engines that can run a model of this kind, fastest first.
    public static func running(quantized: Bool) -> [EngineKind] { allCases.filter { !quantized || $0.runsInt8Models } }
}

/// Where an engine runs the network.
public enum Device: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The worker's own pinned CPU cores.
    case cpu
    /// An NVIDIA GPU by its CUDA index, through ONNX Runtime's CUDA execution provider.
    case cuda(Int)

    /// "cpu", "cuda" (GPU 0) or "cuda:N".
    public init?(_ text: String) {
        switch text {
        case "cpu": self = .cpu
        case "cuda": self = .cuda(0)
        default:
            guard text.hasPrefix("cuda:"), let index = Int(text.dropFirst(5)), index >= 0 else { return nil }
            self = .cuda(index)
        }
    }

    public var description: String {
        switch self {
        case .cpu: "cpu"
        case .cuda(let index): "cuda:\(index)"
        }
    }

    public var isGPU: Bool { self != .cpu }
}

/// The arithmetic precision inference runs at.
public enum Precision: String, CaseIterable, Sendable, Codable {
    /// The engine's own choice: OpenVINO picks bf16 on CPUs with AVX512_BF16 or AMX.
    case automatic = "default"
    case f32
    case bf16
    case f16
}

/// How to build an engine.
public struct EngineOptions: Sendable, Equatable, Codable {
    public var kind: EngineKind
    /// Intra-op threads; 0 lets the engine use every core it may run on.
    public var threads: Int
    public var precision: Precision
    /// Where OpenVINO keeps compiled models so the next start skips compilation; nil for none.
    public var cacheDirectory: URL?
    /// ONNX Runtime: whether idle intra-op threads spin for work (its default) or sleep.
    public var spinning: Bool
    /// The CPU, or a GPU (ONNX Runtime only), with `threads` host threads for what stays on the CPU.
    public var device: Device

    public init(
        kind: EngineKind = .openvino, threads: Int = 0, precision: Precision = .automatic, cacheDirectory: URL? = nil, spinning: Bool = true,
        device: Device = .cpu
    ) {
        self.device = device
        self.kind = kind
        self.threads = threads
        self.precision = precision
        self.cacheDirectory = cacheDirectory
        self.spinning = spinning
    }

    /// `$XDG_CACHE_HOME/visionpool/openvino`, else `~/.cache/visionpool/openvino`.
    public static func defaultCacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return base.appendingPathComponent("visionpool/openvino", isDirectory: true)
    }
}

/// The network a caller wants to run: an ONNX file taking NCHW float32 samples.
public struct EngineModel: Sendable, Equatable, Codable {
    public var file: URL
    /// One sample's input shape, without the batch: [channels, height, width].
    public var sampleShape: [Int]
    /// Scores per sample.
    public var outputCount: Int
    /// An int8 (QDQ) model: the engine must keep its quantization or refuse it.
    public var quantized: Bool

    public init(file: URL, sampleShape: [Int], outputCount: Int, quantized: Bool = false) {
        self.file = file
        self.sampleShape = sampleShape
        self.outputCount = outputCount
        self.quantized = quantized
    }

    public var sampleInputCount: Int { sampleShape.reduce(1, *) }

    /// Refuses buffers that do not hold exactly `batch` samples in and `batch` rows of scores out.
    public func checkBuffers(batch: Int, input: Int, output: Int) throws(EngineError) {
        guard batch >= 1, input == batch * sampleInputCount, output == batch * outputCount else {
            throw EngineError(.inferenceFailed, "a batch of \(batch) needs \(batch * sampleInputCount) input and \(batch * outputCount) output floats")
        }
    }
}

/// What an engine actually runs as, after the library made its choices.
public struct EngineDescription: Sendable, Codable, Equatable {
    public var kind: EngineKind
    /// The precision in use, e.g. "bf16" when the default was left to OpenVINO, or "int8+bf16"
    /// for a quantized model whose remaining float layers run at bf16.
    public var precision: String
    public var threads: Int
    public var version: String
    public var device: Device
    /// Set when the precision the engine chose by itself could not run the model, so it runs
    /// at the next one down.
    public var fallback: PrecisionFallback?
    /// The kernels the model's layers ran, where counted: always for int8 models (their proof
    /// of quantization), for others when asked for (`loadEngine(census:)`).
    public var kernels: KernelCensus?

    public init(
        kind: EngineKind, precision: String, threads: Int, version: String, device: Device = .cpu, fallback: PrecisionFallback? = nil,
        kernels: KernelCensus? = nil
    ) {
        self.kind = kind
        self.precision = precision
        self.threads = threads
        self.version = version
        self.device = device
        self.fallback = fallback
        self.kernels = kernels
    }

    /// "int8+f32", "bf16", or "f32 on cuda:0".
    public var precisionOnDevice: String { device.isGPU ? "\(precision) on \(device)" : precision }
}

/// The engine's automatic precision could not compile or run a model on this CPU, so the
/// engine was built again at the next precision down: e.g. OpenVINO 2026.4 picks bf16 on CPUs
/// with AMX and cannot compile a keep-depthwise int8 EfficientNet there, which runs at f32.
public struct PrecisionFallback: Sendable, Codable, Equatable, CustomStringConvertible {
    /// The precision the engine chose by itself and that failed, e.g. "bf16".
    public var from: String
    /// The precision it runs at instead, e.g. "f32".
    public var to: String
    /// The engine's own words for the failure.
    public var reason: String

    public init(from: String, to: String, reason: String) {
        self.from = from
        self.to = to
        self.reason = reason
    }

    /// e.g. "bf16 (the engine's choice on this CPU) could not run it: No suitable implementations; running f32".
    public var description: String { "\(from) (the engine's choice on this CPU) could not run it: \(reason); running \(to)" }
}

/// Runs one compiled model on tensors in memory the caller owns. An engine is used by one
/// thread at a time.
public protocol InferenceEngine: AnyObject {
    var model: EngineModel { get }
    var engineDescription: EngineDescription { get }

    /// Runs `batch` samples read from `input` and writes `batch × outputCount` scores to `output`.
    func infer(batch: Int, input: UnsafeMutableBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>) throws(EngineError)

    /// Where the engine's own tensors for `batch` read and wrote in the last run: the
    /// caller's buffers when it runs in place, nil where it copies or cannot say.
    func boundBuffers(batch: Int) -> (input: UnsafeRawPointer?, output: UnsafeRawPointer?)

    /// Which kernels the model's layers run; nil where the engine cannot say.
    func kernelCensus() throws(EngineError) -> KernelCensus?
}

extension InferenceEngine {
    public func kernelCensus() throws(EngineError) -> KernelCensus? { nil }
}
