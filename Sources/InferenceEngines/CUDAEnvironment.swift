import CCuda
import Foundation
import SharedMemory

/// What a GPU worker needs from the machine, and the one place that says what is missing:
/// the NVIDIA driver (`libcuda.so.1`, CUDA 13 or newer), the GPUs asked for, and what
/// `tools/setup.sh --cuda` installs — ONNX Runtime's GPU build and the CUDA 13 libraries —
/// found by path, never through `LD_LIBRARY_PATH`.
public struct CUDAEnvironment: Sendable, Equatable {
    /// The folder set-up installed into: `$VISIONPOOL_CUDA_ROOT`, else `.venv/cuda` of the checkout.
    public var root: URL

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let configured = environment["VISIONPOOL_CUDA_ROOT"].flatMap { $0.isEmpty ? nil : $0 }
        root = URL(fileURLWithPath: configured ?? String(cString: vp_cuda_default_root()), isDirectory: true)
    }

    /// The oldest driver that runs onnxruntime-gpu 1.31.1's CUDA 13.0 build, as the driver reports it.
    public static let minimumDriverCUDA = 13000

    /// ONNX Runtime's GPU build: its CUDA provider library lies beside it.
    public var onnxRuntimeLibrary: URL { root.appendingPathComponent("onnxruntime/capi/libonnxruntime.so.1.31.1") }

    /// The CUDA library folders, in load order, each with the library it must hold.
    public var libraryFolders: [(folder: URL, required: String)] {
        [(root.appendingPathComponent("nvidia/cu13/lib"), "libcudart.so.13"), (root.appendingPathComponent("nvidia/cudnn/lib"), "libcudnn.so.9")]
    }

    /// A GPU the driver sees.
    public struct GPU: Sendable, Equatable, CustomStringConvertible {
        public var index: Int
        public var name: String
        public var memoryBytes: Int
        public var description: String { "cuda:\(index) \(name) (\(memoryBytes >> 30) GiB)" }
    }

    /// Checks, before any worker starts, that `devices` (nil: every GPU) can run here: every
    /// missing piece in one message, each with how to get it. Returns the GPUs asked for.
    public func check(devices: [Int]?) throws(EngineError) -> [GPU] {
        var problems: [String] = []
        let installed = libraryFolders.map { $0.folder.appendingPathComponent($0.required) } + [onnxRuntimeLibrary]
        let missing = installed.filter { !FileManager.default.fileExists(atPath: $0.path) }
        if !missing.isEmpty {
            problems.append(
                "ONNX Runtime's GPU build and the CUDA libraries are not installed (no \(missing.map(\.path).joined(separator: ", no "))): run tools/setup.sh --cuda")
        }
        var gpus: [GPU] = []
        do {
            gpus = try Self.driverGPUs(devices: devices)
        } catch {
            problems.append(error.message)
        }
        guard problems.isEmpty else {
            let asked = devices.map { "cuda:" + $0.map(String.init).joined(separator: ",") } ?? "cuda"
            throw EngineError(.loadFailed, "--device \(asked) cannot run here: " + problems.joined(separator: "; "))
        }
        return gpus
    }

    /// The driver's GPUs at `devices`, once it is known to be new enough and to see them.
    static func driverGPUs(devices: [Int]?) throws(EngineError) -> [GPU] {
        var info = vp_cuda_driver_info()
        if let failure = callReportingMessage({ vp_cuda_driver_probe(&info, $0, $1) }) { throw EngineError(.loadFailed, failure) }
        guard info.driver_version >= minimumDriverCUDA else {
            throw EngineError(
                .loadFailed,
                "the NVIDIA driver supports CUDA \(info.driver_version / 1000).\(info.driver_version % 1000 / 10), but onnxruntime-gpu 1.31.1 needs CUDA 13.0: install driver 580 or newer")
        }
        guard info.device_count > 0 else { throw EngineError(.loadFailed, "the NVIDIA driver sees no GPU") }
        let indices = devices ?? Array(0..<Int(info.device_count))
        if let missing = indices.first(where: { $0 >= info.device_count }) {
            throw EngineError(.loadFailed, "there is no GPU cuda:\(missing): the driver sees \(info.device_count) (cuda:0…cuda:\(info.device_count - 1))")
        }
        return try indices.map { index throws(EngineError) in
            var bytes = 0
            var name = ""
            let failure = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer in
                let failure = callReportingMessage { vp_cuda_device_describe(Int32(index), buffer.baseAddress, buffer.count, &bytes, $0, $1) }
                if failure == nil { name = String(cString: buffer.baseAddress!) }
                return failure
            }
            if let failure { throw EngineError(.loadFailed, failure) }
            return GPU(index: index, name: name, memoryBytes: bytes)
        }
    }

    /// Loads the CUDA libraries by path in the worker, before ONNX Runtime's CUDA provider
    /// looks for them by name.
    func loadLibraries() throws(EngineError) {
        for (folder, required) in libraryFolders {
            if let failure = callReportingMessage({ vp_cuda_preload_folder(folder.path, required, $0, $1) }) {
                throw EngineError(.loadFailed, failure)
            }
        }
    }
}

/// Pins host memory for the GPU with the CUDA runtime (`cudaHostRegister`, portable), so
/// ONNX Runtime's copies between a slot and the device are DMA at full PCIe speed.
public struct CUDAHostRegistration: HostMemoryPinning {
    public init() {}

    public func pin(_ region: UnsafeMutableRawBufferPointer) throws {
        if let failure = callReportingMessage({ vp_cuda_host_register(region.baseAddress, region.count, $0, $1) }) {
            throw EngineError(.loadFailed, failure)
        }
    }

    public func unpin(_ region: UnsafeMutableRawBufferPointer) throws {
        if let failure = callReportingMessage({ vp_cuda_host_unregister(region.baseAddress, $0, $1) }) {
            throw EngineError(.loadFailed, failure)
        }
    }
}
