import ArgumentParser
import WorkerPool

@main
struct VisionPool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "visionpool",
        abstract: "Image classification on the CPU: OpenVINO or OpenCV engines, ONNX models.",
        discussion: """
            Models come from a catalog folder of JSON manifests (see `visionpool models`). The bundled \
            models are produced by tools/setup.sh; efficientnet-lite0 is the default.
            """,
        subcommands: [Classify.self, Serve.self, Bench.self, Models.self, Worker.self]
    )
}

/// A pool worker: started by the pool with its shared memory on descriptor 3 and its
/// control socket on descriptor 4, never by hand.
struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one pool worker (started by the pool).", shouldDisplay: false)

    @Option(name: .customLong("configuration"), help: "The worker's settings, as JSON.")
    var settings: String

    func run() throws {
        WorkerMain.run(try WorkerConfiguration.decode(settings))
    }
}
