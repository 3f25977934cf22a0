// swift-tools-version: 6.1
import Foundation
import PackageDescription

/// The checkout this manifest lives in: native paths below are resolved from it.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

/// OpenVINO's C API comes from the pinned PyPI wheel that `tools/setup.sh` installs into
/// the project's `.venv`; setup links `.venv/openvino` to the wheel's package folder.
let openVINO = "\(packageRoot)/.venv/openvino"

/// ONNX Runtime's library from the pinned PyPI wheel; setup links `.venv/onnxruntime` to the
/// wheel's `capi` folder.
let onnxRuntimeLibrary = "\(packageRoot)/.venv/onnxruntime/libonnxruntime.so.1.31.1"

/// `tools/setup.sh --cuda` installs ONNX Runtime's GPU build and the CUDA 13 libraries here.
let cudaRoot = "\(packageRoot)/.venv/cuda"

/// Only the OpenCV modules in use: the full `opencv4` set costs ~100 MB RSS per process.
let openCVInclude = "-I/usr/include/opencv4"

let package = Package(
    name: "visionpool",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "visionpool", targets: ["visionpool"]),
        .executable(name: "visionpool-worker", targets: ["visionpool-worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // Native libraries behind small C headers.
        .target(
            name: "COpenCVCodec",
            cSettings: [.unsafeFlags(["-O2"])],
            cxxSettings: [.unsafeFlags([openCVInclude, "-O2"])],
            linkerSettings: [
                // SilentPNGWarnings.cpp interposes libpng's constructor; the symbol must be dynamic to win.
                .unsafeFlags(["-Xlinker", "--export-dynamic-symbol=png_create_read_struct"]),
                // JPEGDecoder.c decodes JPEGs with libjpeg-turbo itself (libjpeg62-turbo-dev).
                .linkedLibrary("jpeg"),
                .linkedLibrary("opencv_imgcodecs"),
                .linkedLibrary("opencv_imgproc"),
                .linkedLibrary("opencv_core"),
            ]
        ),
        .target(
            name: "COpenCVDNN",
            cxxSettings: [.unsafeFlags([openCVInclude, "-O2"])],
            linkerSettings: [
                .linkedLibrary("opencv_dnn"),
                .linkedLibrary("opencv_core"),
            ]
        ),
        .target(
            name: "COpenCVCanvas",
            cxxSettings: [.unsafeFlags([openCVInclude, "-O2"])],
            linkerSettings: [
                .linkedLibrary("opencv_imgcodecs"),
                .linkedLibrary("opencv_imgproc"),
                .linkedLibrary("opencv_core"),
            ]
        ),
        .target(
            name: "COpenVINO",
            cSettings: [.unsafeFlags(["-I\(openVINO)/include", "-O2"])],
            linkerSettings: [
                .unsafeFlags([
                    "-L\(openVINO)/libs", "-l:libopenvino_c.so.2641",
                    "-Xlinker", "-rpath", "-Xlinker", "\(openVINO)/libs",
                ]),
            ]
        ),

        .target(
            name: "COnnxRuntime",
            // Loaded with dlopen, not linked: the library set-up installed, unless
            // VISIONPOOL_ONNXRUNTIME_LIBRARY names another.
            cSettings: [.define("VP_ORT_DEFAULT_LIBRARY", to: "\"\(onnxRuntimeLibrary)\""), .unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("dl")]
        ),
        .target(
            name: "CCuda",
            // The driver and the CUDA runtime are dlopened: machines without a GPU build and run the rest.
            cSettings: [.define("VP_CUDA_DEFAULT_ROOT", to: "\"\(cudaRoot)\""), .unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("dl")]
        ),
        .target(name: "CLinuxShims"),
        .target(name: "CPoolWire"),
        .target(name: "SystemSupport", dependencies: ["CLinuxShims", .product(name: "SystemPackage", package: "swift-system")]),

        // Swift modules, one per concern.
        .target(name: "ImagePipeline", dependencies: ["COpenCVCodec"]),
        .target(name: "ModelCatalog"),
        .target(name: "EngineInterface"),
        .target(name: "InferenceEngines", dependencies: ["EngineInterface", "COpenVINO", "COpenCVDNN", "COnnxRuntime", "CCuda", "SystemSupport", "SharedMemory"]),
        .target(name: "SharedMemory", dependencies: ["CLinuxShims", "CPoolWire", "SystemSupport", .product(name: "SystemPackage", package: "swift-system")]),
        .target(
            name: "WorkerPool",
            dependencies: [
                "CLinuxShims", "CPoolWire", "SystemSupport", "SharedMemory", "EngineInterface", .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The worker process: engines, arena and control channel only (no HTTP, NIO or image
        // codecs), so each worker maps a fraction of what the front does.
        .executableTarget(
            name: "visionpool-worker",
            dependencies: ["WorkerPool", "InferenceEngines", "SharedMemory", "SystemSupport", "CLinuxShims", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .target(name: "Classification", dependencies: ["ImagePipeline", "ModelCatalog", "InferenceEngines", "WorkerPool", "SystemSupport"]),
        // Which models and versions a server serves, each on its own pool: the repository, the
        // per-model configuration, the CPUs divided between the pools, loading and unloading.
        .target(
            name: "ModelRegistry",
            dependencies: [
                "Classification", "ImagePipeline", "ModelCatalog", "InferenceEngines", "WorkerPool", "SystemSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Benchmarking",
            dependencies: [
                "Classification", "ImagePipeline", "InferenceEngines", "ModelCatalog", "WorkerPool", "COpenCVCanvas", "CLinuxShims", "KServeGRPC",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // The KServe v2 gRPC protocol: Protos/inference.proto and the Swift code generated from
        // it by tools/generate_grpc.sh (committed, so the build needs no code generator).
        .target(
            name: "KServeGRPC",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["Protos"]
        ),
        .target(
            name: "InferenceServer",
            dependencies: [
                "Classification", "ImagePipeline", "ModelCatalog", "ModelRegistry", "WorkerPool", "SystemSupport", "CLinuxShims", "KServeGRPC",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "visionpool",
            dependencies: [
                "Classification", "Benchmarking", "ModelCatalog", "ModelRegistry", "InferenceEngines", "ImagePipeline", "WorkerPool", "InferenceServer",
                "CLinuxShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),

        // Tests run the real engines, decoders and executable on models and fixtures made by set-up.
        .target(name: "TestSupport", dependencies: ["ModelCatalog"], path: "Tests/TestSupport"),
        .testTarget(name: "ImagePipelineTests", dependencies: ["ImagePipeline", "TestSupport"]),
        .testTarget(name: "ModelCatalogTests", dependencies: ["ModelCatalog", "TestSupport"]),
        .testTarget(name: "InferenceEnginesTests", dependencies: ["InferenceEngines", "COnnxRuntime", "CCuda", "SharedMemory", "TestSupport"]),
        .testTarget(name: "ClassificationTests", dependencies: ["Classification", "TestSupport"]),
        .testTarget(
            name: "ModelRegistryTests",
            dependencies: ["ModelRegistry", "ModelCatalog", "WorkerPool", "TestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "BenchmarkingTests",
            dependencies: [
                "Benchmarking", "SystemSupport", "visionpool", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .testTarget(name: "SystemSupportTests", dependencies: ["SystemSupport", "CLinuxShims"]),
        .testTarget(name: "SharedMemoryTests", dependencies: ["SharedMemory", "CPoolWire", "CLinuxShims", "TestSupport"]),
        .testTarget(
            name: "InferenceServerTests",
            dependencies: [
                "visionpool", "InferenceServer", "ModelRegistry", "Classification", "WorkerPool", "CLinuxShims", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "WorkerPoolTests", dependencies: ["WorkerPool", "Classification", "CPoolWire", "CLinuxShims", "visionpool", "TestSupport"]),
        .testTarget(name: "VisionPoolCLITests", dependencies: ["visionpool", "TestSupport"]),
    ],
    cxxLanguageStandard: .cxx17
)

// The test targets drive real binaries, servers and pools built optimized above; their own code
// needs no optimizer, and without it a fresh build with the tests took 477 s instead of 520 on 2 CPUs.
// This package's own modules are compiled for `@testable import` (one release build serves set-up
// and the tests, tools/build_flags.sh); the dependencies build as they ship: with
// `-Xswiftc -enable-testing` on everything, a fresh build took 877 instead of 807 CPU-seconds.
for target in package.targets {
    let flag = target.type == .test || target.name == "TestSupport" ? "-Onone" : "-enable-testing"
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags([flag])]
}
