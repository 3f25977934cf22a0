import Foundation
import Glibc
import WorkerPool

// One pool worker: spawned by the pool with its shared memory and control socket on fixed
// descriptors, never by hand. Only the engines, the arena and the control channel are
// linked in: no HTTP, no image codecs, so a worker starts and stays small.
let usage = """
    usage: visionpool-worker --configuration JSON

    Runs one visionpool pool worker. The pool starts it with its shared-memory arena and its
    control socket already open; run `visionpool serve`, `classify` or `bench` instead.

    """
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments == ["--help"] || arguments == ["-h"] {
    print(usage, terminator: "")
    exit(0)
}
guard arguments.count == 2, arguments[0] == "--configuration" else {
    FileHandle.standardError.write(Data(usage.utf8))
    exit(64)
}
do {
    WorkerLoop.run(try WorkerConfiguration.decode(arguments[1]))
} catch {
    FileHandle.standardError.write(Data("visionpool-worker: the --configuration JSON is not a worker configuration: \(error)\n".utf8))
    exit(64)
}
