import Foundation
import TestSupport
import Testing

/// README's commands, run as written, so the docs cannot drift from the program. The only
/// changes: `bin` is the binary under test; the files README names (photos, an ONNX model)
/// are fixtures under those names; the catalog is a private copy (links to `Models/`), as is
/// the socket folder; and benchmarks measure 1 s, not 10.
@Suite(.serialized) struct ReadmeCommandsTests {
    /// The fenced `sh` blocks of README, in order.
    static func shellBlocks() throws -> [[String]] {
        let readme = try String(contentsOf: TestPaths.root.appendingPathComponent("README.md"), encoding: .utf8)
        var blocks: [[String]] = []
        var current: [String]?
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if current == nil, line == "```sh" {
                current = []
            } else if current != nil, line == "```" {
                blocks.append(current!)
                current = nil
            } else if current != nil {
                current!.append(line)
            }
        }
        return blocks
    }

    /// The quick start names the two commands, and CI runs exactly the second.
    @Test func theQuickStartIsSetUpThenTest() throws {
        let quickStart = try #require(try Self.shellBlocks().first)
        let commands = quickStart.map { $0.split(separator: "#").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" }
        #expect(commands == ["tools/setup.sh", "tools/test.sh"])
        for command in commands {
            #expect(FileManager.default.isExecutableFile(atPath: TestPaths.root.appendingPathComponent(command).path))
        }
        let ci = try String(contentsOf: TestPaths.root.appendingPathComponent(".ci/run"), encoding: .utf8)
        #expect(ci.contains("exec tools/test.sh"))
    }

    @Test func everyOtherBlockRunsAsWritten() throws {
        let blocks = try Self.shellBlocks().dropFirst()
        try #require(blocks.first?.first?.hasPrefix("bin=") == true, "README's \"Using it\" block starts with bin=…")
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let images = try FileManager.default.contentsOfDirectory(at: TestPaths.samples, includingPropertiesForKeys: nil)
            .filter { ["jpg", "png"].contains($0.pathExtension) }.sorted { $0.path < $1.path }
        try #require(images.count >= 2)
        for folder in ["holiday", "photos"] {
            let destination = directory.appendingPathComponent(folder)
            try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
            for image in images.prefix(2) { try FileManager.default.copyItem(at: image, to: destination.appendingPathComponent(image.lastPathComponent)) }
        }
        try FileManager.default.copyItem(at: TestPaths.fixtures.appendingPathComponent("cat.jpg"), to: directory.appendingPathComponent("cat.jpg"))
        try FileManager.default.copyItem(at: TestPaths.fixtures.appendingPathComponent("cat.jpg"), to: directory.appendingPathComponent("photo.jpg"))
        try FileManager.default.createSymbolicLink(
            at: directory.appendingPathComponent("resnet50-v1-12.onnx"), withDestinationURL: TestPaths.models.appendingPathComponent("resnet50.onnx"))
        let catalog = directory.appendingPathComponent("Models")
        try FileManager.default.createDirectory(at: catalog, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: TestPaths.models.path) {
            try FileManager.default.createSymbolicLink(at: catalog.appendingPathComponent(name), withDestinationURL: TestPaths.models.appendingPathComponent(name))
        }
        let runtime = directory.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])

        var script = ["set -euxo pipefail"]
        for line in blocks.joined() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            if line.hasPrefix("bin=") {
                script.append("bin='\(TestPaths.executable.path)'")
            } else {
                script.append(line.replacingOccurrences(of: "--duration 10", with: "--duration 0.5 --warm-up 0.2"))
            }
        }
        let scriptFile = directory.appendingPathComponent("readme.sh")
        try script.joined(separator: "\n").write(to: scriptFile, atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["900", "/bin/bash", scriptFile.path]
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(["XDG_RUNTIME_DIR": runtime.path, "VISIONPOOL_MODELS": catalog.path]) { $1 }
        let log = directory.appendingPathComponent("log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        process.waitUntilExit()
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "README's commands failed:\n\(output.suffix(3000))")
        for written in ["run.json", "sweep.png"] {
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(written).path), "\(written) was not written")
        }
        #expect(!FileManager.default.fileExists(atPath: runtime.appendingPathComponent("visionpool.sock").path), "the server removed its socket on SIGTERM")
        #expect(FileManager.default.fileExists(atPath: catalog.appendingPathComponent("resnet50-real.json").path), "models add wrote its manifest")
    }
}
