import CCuda
import COnnxRuntime
import Foundation
import Glibc
import InferenceEngines
import SharedMemory
import TestSupport
import Testing

/// Whether this machine has the NVIDIA driver: without it, the no-driver errors are the real path.
let hasNVIDIADriver: Bool = {
    guard let driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD) ?? dlopen("libcuda.so.1", RTLD_NOW) else { return false }
    dlclose(driver)
    return true
}()

/// The CUDA half of the engines, as far as a machine without a GPU can run it: the real
/// no-driver and missing-library paths, the provider options, and ONNX Runtime refusing CUDA
/// in its CPU build. tools/gpu_check.sh runs the rest on a GPU.
@Suite struct CUDATests {
    @Test("--device values", arguments: [("cpu", Device.cpu), ("cuda", .cuda(0)), ("cuda:0", .cuda(0)), ("cuda:3", .cuda(3))])
    func devicesParse(text: String, device: Device) {
        #expect(Device(text) == device)
        #expect(Device(device.description) == device)
    }

    @Test("what is not a device", arguments: ["gpu", "cuda:", "cuda:-1", "cuda:x", "CUDA", "cpu:0"])
    func notDevices(text: String) {
        #expect(Device(text) == nil)
    }

    @Test func theEnvironmentIsFoundUnderItsRoot() {
        let cuda = CUDAEnvironment(environment: ["VISIONPOOL_CUDA_ROOT": "/opt/gpu"])
        #expect(cuda.onnxRuntimeLibrary.path == "/opt/gpu/onnxruntime/capi/libonnxruntime.so.1.31.1")
        #expect(cuda.libraryFolders.map(\.folder.path) == ["/opt/gpu/nvidia/cu13/lib", "/opt/gpu/nvidia/cudnn/lib"])
        #expect(CUDAEnvironment(environment: [:]).root.path.hasSuffix("/.venv/cuda"))
    }

    @Test func everyMissingPieceIsNamedInOneMessage() throws {
        let empty = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: empty) }
        let cuda = CUDAEnvironment(environment: ["VISIONPOOL_CUDA_ROOT": empty.path])
        let error = #expect(throws: EngineError.self) { try cuda.check(devices: [0]) }
        let message = error?.message ?? ""
        #expect(message.hasPrefix("--device cuda:0 cannot run here: "), "\(message)")
        #expect(message.contains("ONNX Runtime's GPU build and the CUDA libraries are not installed"), "\(message)")
        for library in ["nvidia/cu13/lib/libcudart.so.13", "nvidia/cudnn/lib/libcudnn.so.9", "onnxruntime/capi/libonnxruntime.so.1.31.1"] {
            #expect(message.contains("no \(empty.path)/\(library)"), "\(message)")
        }
        #expect(message.contains("run tools/setup.sh --cuda"), "\(message)")
        if !hasNVIDIADriver {
            #expect(message.contains("no NVIDIA driver: libcuda.so.1 cannot be loaded") && message.contains("driver 580 or newer"), "\(message)")
        }
        #expect(!message.contains("\n"))
    }

    @Test func aGPUEngineWithoutTheLibrariesSaysHowToGetThem() throws {
        let error = #expect(throws: EngineError.self) {
            try OnnxRuntimeEngine(model: try engineModel("tiny"), options: EngineOptions(kind: .onnxruntime, threads: 1, device: .cuda(0)))
        }
        #expect(error?.kind == .loadFailed)
        if !FileManager.default.fileExists(atPath: CUDAEnvironment().libraryFolders[0].folder.path) {
            #expect(error?.message.contains("the CUDA libraries are not installed") == true && error?.message.contains("tools/setup.sh --cuda") == true,
                    "\(error?.message ?? "")")
        }
    }

    /// The CUDA runtime alone, which set-up installs for this test (PyPI nvidia-cuda-runtime):
    /// loaded by path from its folder as a GPU worker loads it, then asked to pin a real arena
    /// through the worker's seam. Without a driver cudart itself says why it cannot.
    @Test func theRuntimeLoadsByPathAndPinsTheArenaOrSaysWhyNot() throws {
        let lib = TestPaths.root.appendingPathComponent(".venv/lib")
        let python = try #require(try FileManager.default.contentsOfDirectory(atPath: lib.path).first { $0.hasPrefix("python3") })
        let folder = lib.appendingPathComponent("\(python)/site-packages/nvidia/cu13/lib").path
        let loaded = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { buffer in
            vp_cuda_preload_folder(folder, "libcudart.so.13", buffer.baseAddress, buffer.count) == 0 ? nil : String(cString: buffer.baseAddress!)
        }
        #expect(loaded == nil, "\(loaded ?? "")")
        let arena = try SharedArena(layout: SharedArena.Layout(slotCount: 2, maxBatch: 1, inputFloatsPerSample: 3 * 224 * 224, outputFloatsPerSample: 1000))
        if hasNVIDIADriver {
            let region = try arena.pin(with: CUDAHostRegistration())
            try CUDAHostRegistration().unpin(region)
        } else {
            let error = #expect(throws: EngineError.self) { try arena.pin(with: CUDAHostRegistration()) }
            #expect(error?.message.hasPrefix("cannot pin \(arena.layout.totalSize) bytes of shared memory for the GPU (cudaHostRegister: ") == true,
                    "\(error?.message ?? "")")
        }
    }

    @Test func aFolderWithoutTheRuntimeIsNamed() throws {
        let empty = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: empty) }
        let message = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { buffer in
            vp_cuda_preload_folder(empty.path, "libcudart.so.13", buffer.baseAddress, buffer.count) == 0 ? nil : String(cString: buffer.baseAddress!)
        }
        #expect(message == "the CUDA libraries are not installed: \(empty.path) has no libcudart.so.13 (run tools/setup.sh --cuda)")
    }

    @Test func int8ModelsStayOnTheCPU() throws {
        let error = #expect(throws: EngineError.self) {
            try OnnxRuntimeEngine(model: try engineModel("resnet50-int8"), options: EngineOptions(kind: .onnxruntime, device: .cuda(0)))
        }
        #expect(error?.kind == .unsupportedOption && error?.message.contains("on CUDA run its f32 model") == true)
    }

    @Test func theProviderSearchesConvolutionsOnceAndCopiesOnTheComputeStream() {
        let options = Dictionary(uniqueKeysWithValues: OnnxRuntimeEngine.cudaProviderOptions.map { ($0.key, $0.value) })
        #expect(options == ["cudnn_conv_algo_search": "EXHAUSTIVE", "cudnn_conv_use_max_workspace": "1", "do_copy_in_default_stream": "1"])
    }

    /// The provider is added through the real C API: ONNX Runtime's CPU build answers that it
    /// has no CUDA, and the session is not made.
    @Test func theCPUBuildOfONNXRuntimeRefusesTheCUDAProvider() throws {
        let model = try engineModel("tiny")
        var created: OpaquePointer?
        let message = model.file.path.withCString { path in
            var options = vp_ort_options(library_path: nil, model_path: path, threads: 1, allow_spinning: 0, profile_prefix: nil, cuda_device: 0)
            return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { buffer in
                vp_ort_engine_create(&options, &created, buffer.baseAddress, buffer.count) == 0 ? nil : String(cString: buffer.baseAddress!)
            }
        }
        #expect(created == nil)
        #expect(message?.contains("CUDA") == true, "\(message ?? "no error")")
    }
}
