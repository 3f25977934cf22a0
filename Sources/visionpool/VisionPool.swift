import ArgumentParser

@main
struct VisionPool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "visionpool",
        abstract: "Image classification on the CPU: OpenVINO or OpenCV engines, ONNX models.",
        discussion: """
            Models come from a catalog folder of JSON manifests (see `visionpool models`). The bundled \
            models are produced by tools/setup.sh; efficientnet-lite0 is the default.
            """,
        subcommands: [Classify.self, Serve.self, Bench.self, Models.self]
    )
}
