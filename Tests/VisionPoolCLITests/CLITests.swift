import Foundation
import TestSupport
import Testing

func topClass(_ line: [String: Any]) -> Int? {
    ((line["top"] as? [[String: Any]])?.first?["class_index"] as? NSNumber)?.intValue
}

@Suite(.serialized) struct CLITests {
    @Test func classifiesTheSamplePhotosAsJSON() throws {
        let run = try visionpool(["classify", "--json", "--threads", "2", TestPaths.samples.path])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.jsonLines
        #expect(lines.count == 5)
        let cat = try #require(lines.first { ($0["path"] as? String)?.hasSuffix("chelsea.png") == true })
        #expect(catClasses.contains(topClass(cat) ?? -1))
        #expect((cat["top"] as? [Any])?.count == 5)
        let coffee = try #require(lines.first { ($0["path"] as? String)?.hasSuffix("coffee.png") == true })
        let coffeeTop = (coffee["top"] as? [[String: Any]] ?? []).compactMap { ($0["class_index"] as? NSNumber)?.intValue }
        #expect(!coffeeClasses.isDisjoint(with: coffeeTop))
        #expect(cat["timings_ms"] as? [String: Any] != nil)
    }

    @Test func tableForPeople() throws {
        let run = try visionpool(["classify", "--top", "3", TestPaths.samples.appendingPathComponent("chelsea.png").path])
        #expect(run.status == 0)
        #expect(run.stdout.contains("chelsea.png") && run.stdout.contains("cat"))
        #expect(run.stdout.split(separator: "\n").count == 4)
        #expect(run.stderr.contains("1 classified, 0 failed"))
        // chelsea.png carries an sRGB profile libpng warns about; the warning stays out of the output.
        #expect(!run.stderr.contains("libpng"), "\(run.stderr)")
    }

    @Test func aFailingFileIsReportedAndTheRestGoOn() throws {
        let bad = TestPaths.fixtures.appendingPathComponent("truncated.jpg").path
        let good = TestPaths.fixtures.appendingPathComponent("cat.jpg").path
        let run = try visionpool(["classify", "--json", bad, "/no/such/file.jpg", good])
        #expect(run.status == 1)
        let lines = run.jsonLines
        #expect(lines.count == 3)
        let failure = try #require(lines.first { ($0["path"] as? String) == bad })
        #expect((failure["error"] as? [String: Any])?["kind"] as? String == "truncated")
        #expect(lines.contains { ($0["path"] as? String) == "/no/such/file.jpg" && $0["error"] != nil })
        #expect(catClasses.contains(lines.first { ($0["path"] as? String) == good }.flatMap(topClass) ?? -1))
        #expect(run.stderr.contains("truncated.jpg") && run.stderr.contains("1 classified, 2 failed"))
    }

    @Test func foldersAreWalkedForImagesOnly() throws {
        let run = try visionpool(["classify", "--json", "--engine", "opencv", "--threads", "1", TestPaths.fixtures.path])
        let paths = run.jsonLines.compactMap { $0["path"] as? String }
        #expect(!paths.contains { $0.hasSuffix(".txt") || $0.hasSuffix(".bin") || $0.hasSuffix(".npy") })
        #expect(paths.contains { $0.hasSuffix("cat.webp") } && paths.contains { $0.hasSuffix("cat.tiff") })
        #expect(paths == paths.sorted())
        #expect(run.status == 1, "the folder holds broken images on purpose")
    }

    @Test func syntheticModelsSaySo() throws {
        let run = try visionpool(["classify", "--model", "resnet18", TestPaths.fixtures.appendingPathComponent("cat.jpg").path])
        #expect(run.status == 0)
        #expect(run.stderr.contains("synthetic weights"))
    }

    @Test func theInt8ModelClassifiesChelseaAsACatThroughThePool() throws {
        let chelsea = TestPaths.samples.appendingPathComponent("chelsea.png").path
        let run = try visionpool(["classify", "--json", "--model", "efficientnet-lite0-int8", "--workers", "1", "--threads", "2", chelsea])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(catClasses.contains(run.jsonLines.first.flatMap(topClass) ?? -1))
        #expect(!run.stderr.contains("synthetic"))
        #expect(run.stderr.contains("openvino int8"), "the workers report their int8 kernels: \(run.stderr)")
    }

    @Test("bad arguments are explained", arguments: [
        (["classify", "--engine", "opencv", "--model", "resnet50-int8", "--in-process", TestPaths.samples.appendingPathComponent("chelsea.png").path], "--engine openvino"),
        (["classify", "--model", "nope", "x.jpg"], "no model named \"nope\""),
        (["classify", "--engine", "cuda", "x.jpg"], "cuda"),
        (["classify", "--engine", "opencv", "--precision", "bf16", "x.jpg"], "f32 only"),
        (["classify", "--top", "0", "x.jpg"], "--top"),
        (["classify"], "Missing expected argument"),
        (["classify", "--device", "gpu", "x.jpg"], "--device"),
        (["classify", "--device", "cuda:0,0", "x.jpg"], "--device"),
        (["classify", "--device", "cuda:", "x.jpg"], "--device"),
        (["classify", "--device", "cuda", "--engine", "openvino", "x.jpg"], "leave out --engine openvino"),
    ])
    func badArguments(arguments: [String], message: String) throws {
        let run = try visionpool(arguments)
        #expect(run.status != 0)
        #expect(run.stderr.contains(message), "\(run.stderr)")
    }

    /// Without the driver or set-up's CUDA libraries (the real path on a machine without a
    /// GPU), every command stops at start with one line naming what is missing.
    @Test("--device cuda says what is missing, at start", arguments: [
        ["classify", "--device", "cuda", TestPaths.samples.appendingPathComponent("chelsea.png").path, TestPaths.samples.appendingPathComponent("coffee.png").path],
        ["classify", "--in-process", "--device", "cuda:0", TestPaths.samples.appendingPathComponent("chelsea.png").path],
        ["serve", "--device", "cuda:1", "--socket", "/tmp/visionpool-cuda-test.sock"],
        ["bench", "--pool", "--device", "cuda", "--duration", "1"],
    ])
    func cudaWithoutItsPiecesStopsAtStart(arguments: [String]) throws {
        let empty = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: empty) }
        let run = try visionpool(arguments, environment: ["VISIONPOOL_CUDA_ROOT": empty.path])
        #expect(run.status != 0)
        let errors = run.stderr.split(separator: "\n").filter { $0.contains("cannot run here") }
        #expect(errors.count == 1, "\(run.stderr)")
        #expect(errors.first?.contains("run tools/setup.sh --cuda") == true, "\(run.stderr)")
        #expect(!run.stderr.contains("worker"), "no worker was started: \(run.stderr)")
    }

    @Test func modelsListsTheCatalog() throws {
        let run = try visionpool(["models"])
        #expect(run.status == 0)
        for name in ["efficientnet-lite0", "resnet18", "resnet50", "synthetic", "Apache-2.0", "engines     openvino, opencv, onnxruntime"] {
            #expect(run.stdout.contains(name), "\(name)")
        }
    }

    @Test func modelsCheckRunsEachModelOnEveryEngine() throws {
        let directory = try catalog(with: ["tiny", "efficientnet-lite0-int8"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try visionpool(["models", "--check", "--models-dir", directory.path])
        #expect(run.status == 0, "\(run.stderr)")
        // The int8 model: listed and really run with int8 kernels on two engines, refused by opencv.
        let int8 = try #require(run.stdout.components(separatedBy: "efficientnet-lite0-int8  [").last)
        #expect(int8.contains("engines     openvino, onnxruntime\n"), "\(int8)")
        for engine in ["openvino", "onnxruntime"] {
            #expect(int8.contains(try Regex("\(engine) +runs at int8")), "\(engine): \(int8)")
        }
        #expect(int8.contains(#/opencv +cannot run it: .*int8 \(QDQ\)/#), "\(int8)")
        let tiny = try #require(run.stdout.components(separatedBy: "tiny  [").last?.components(separatedBy: "efficientnet-lite0-int8  [").first)
        #expect(tiny.components(separatedBy: "runs at").count == 4, "all three engines run the f32 model: \(tiny)")
    }

    @Test func aUserModelCanBeAddedAndUsed() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let add = try visionpool([
            "models", "add", TestPaths.models.appendingPathComponent("efficientnet-lite0.onnx").path, "--name", "my-classifier",
            "--labels", TestPaths.models.appendingPathComponent("imagenet-labels.txt").path, "--preprocess", "tensorflow",
            "--models-dir", directory.path,
        ])
        #expect(add.status == 0, "\(add.stderr)")
        let run = try visionpool(["classify", "--json", "--model", "my-classifier", TestPaths.samples.appendingPathComponent("chelsea.png").path],
                                 environment: ["VISIONPOOL_MODELS": directory.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(catClasses.contains(run.jsonLines.first.flatMap(topClass) ?? -1))
    }

    /// classify and bench take a model from a repository as serve does: its folder by name, the
    /// version its config.json's policy chooses, and a precise error when there is none.
    @Test func classifyAndBenchPickAModelFromARepository() throws {
        let repository = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: repository) }
        let folder = repository.appendingPathComponent("catnet")
        for (version, file) in [(1, "tiny.onnx"), (2, "efficientnet-lite0.onnx")] {
            let versionFolder = folder.appendingPathComponent(String(version))
            try FileManager.default.createDirectory(at: versionFolder, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(at: versionFolder.appendingPathComponent("model.onnx"), withDestinationURL: TestPaths.models.appendingPathComponent(file))
        }
        try FileManager.default.copyItem(at: TestPaths.models.appendingPathComponent("imagenet-labels.txt"), to: folder.appendingPathComponent("labels.txt"))
        let chelsea = TestPaths.samples.appendingPathComponent("chelsea.png").path
        let classify = ["classify", "--json", "--model-repository", repository.path, "--model", "catnet", chelsea]

        let newest = try visionpool(classify)
        #expect(newest.status == 0 && newest.stderr.contains("catnet version 2"), "\(newest.stderr)")
        #expect(catClasses.contains(newest.jsonLines.first.flatMap(topClass) ?? -1), "version 2 is EfficientNet-Lite0")

        try Data(#"{"version_policy": {"specific": [1]}}"#.utf8).write(to: folder.appendingPathComponent("config.json"))
        let bench = try visionpool(["bench", "--model-repository", repository.path, "--model", "catnet", "--requests", "5", "--warm-up", "0", "--json", "-"])
        #expect(bench.status == 0, "\(bench.stderr)")
        #expect(try visionpool(classify).stderr.contains("catnet version 1"))

        try Data(#"{"version_policy": {"specific": [7]}}"#.utf8).write(to: folder.appendingPathComponent("config.json"))
        let none = try visionpool(classify)
        #expect(none.status != 0 && none.stderr.contains("chooses none of its versions (1, 2)"), "\(none.stderr)")
        let missing = try visionpool(["classify", "--model-repository", repository.path, "--model", "dognet", chelsea])
        #expect(missing.status != 0 && missing.stderr.contains("no model dognet in") && missing.stderr.contains("(it holds catnet)"), "\(missing.stderr)")
    }

    @Test func addRefusesWhatIsNotAClassifier() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try visionpool(["models", "add", TestPaths.fixtures.appendingPathComponent("text.txt").path, "--models-dir", directory.path])
        #expect(run.status != 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test func poolAndInProcessClassifyAlike() throws {
        let images = ["chelsea.png", "coffee.png", "rocket.jpg"].map { TestPaths.samples.appendingPathComponent($0).path }
        let common = ["classify", "--json", "--precision", "f32", "--threads", "1"]
        let pooled = try visionpool(common + ["--workers", "2"] + images)
        let alone = try visionpool(common + ["--in-process"] + images)
        #expect(pooled.status == 0 && alone.status == 0, "\(pooled.stderr)\(alone.stderr)")
        #expect(pooled.stderr.contains("2 openvino f32 workers") && alone.stderr.contains("in process"), "\(pooled.stderr)")
        let top = { (run: Run) in run.jsonLines.map { ($0["path"] as? String ?? "", topClass($0) ?? -1) } }
        #expect(top(pooled).map(\.0) == images, "results come back in the order the images were given")
        #expect(top(pooled).map(\.1) == top(alone).map(\.1))
    }

    @Test func oversubscriptionIsRefusedUnlessAskedFor() throws {
        let images = ["chelsea.png", "coffee.png"].map { TestPaths.samples.appendingPathComponent($0).path }
        let refused = try visionpool(["classify", "--workers", "64", "--threads", "1"] + images)
        #expect(refused.status != 0 && refused.stderr.contains("CPUs"), "\(refused.stderr)")
    }

    @Test func helpExplainsTheOptions() throws {
        let run = try visionpool(["classify", "--help"])
        #expect(run.status == 0)
        for option in ["--model", "--engine", "--threads", "--precision", "--top", "--json", "--max-pixels", "--workers", "--max-batch", "--in-process"] {
            #expect(run.stdout.contains(option), "\(option)")
        }
    }
}

/// Defaults come from the CPUs this process may use (its affinity mask), not the machine's.
@Suite struct AffinityDefaultsTests {
    @Test func anInProcessEngineUnderTasksetUsesOneThread() throws {
        let image = TestPaths.fixtures.appendingPathComponent("cat.jpg").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        process.arguments = ["-c", "0", TestPaths.executable.path, "classify", "--in-process", "--model", "tiny", image]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(stderr)")
        #expect(stderr.contains(", 1 threads,"), "one CPU in the mask, one engine thread: \(stderr)")
    }
}

/// A precision the engine chose by itself that cannot run a model steps down and says so; one
/// the user asked for is kept or refused in one line. Under an AVX2 cap OpenVINO still picks
/// bf16 (from the real CPU), which AVX2 kernels cannot run: the failure an AMX Xeon shows
/// natively for efficientnet-lite0-int8, reproduced on any x86 machine.
@Suite struct PrecisionFallbackTests {
    static let avx2 = ["ONEDNN_MAX_CPU_ISA": "AVX2"]

    @Test func anAutomaticPrecisionThatCannotRunFallsBackAndSaysSo() throws {
        let run = try visionpool(["classify", "--json", "--model", "efficientnet-lite0-int8", TestPaths.samples.path], environment: Self.avx2)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(catClasses.contains(run.jsonLines.first { ($0["path"] as? String)?.hasSuffix("chelsea.png") == true }.flatMap(topClass) ?? -1))
        // The pool's log line, once for the pool, and the summary's line.
        let logLines = run.stderr.split(separator: "\n").filter { $0.contains("warning") && $0.contains("could not run it") }
        #expect(logLines.count == 1, "\(run.stderr)")
        #expect(run.stderr.contains("int8+f32 workers") && run.stderr.contains("  bf16 (the engine's choice on this CPU) could not run it"), "\(run.stderr)")
        let inProcess = try visionpool(["classify", "--in-process", "--model", "tiny", TestPaths.fixtures.appendingPathComponent("cat.jpg").path], environment: Self.avx2)
        #expect(inProcess.status == 0 && inProcess.stderr.contains("openvino f32") && inProcess.stderr.contains("running f32"), "\(inProcess.stderr)")
    }

    @Test func aPrecisionAskedForThatCannotRunIsOneClearErrorNotACrashLoop() throws {
        let run = try visionpool(["classify", "--precision", "bf16", "--model", "efficientnet-lite0", TestPaths.samples.path], environment: Self.avx2)
        #expect(run.status != 0)
        let lines = run.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count == 1, "one line: \(run.stderr)")
        let line = String(lines.first ?? "")
        #expect(line.contains("efficientnet-lite0.onnx cannot run at bf16 on openvino") && line.contains("cannot compile"), "\(line)")
        #expect(!line.contains("in a row"), "the first worker's reason stops the start: \(line)")
    }

    @Test func theServedModelsMetadataSaysWhatItRunsAndWhy() throws {
        let server = try ServerHarness(["--model", "tiny"], environment: Self.avx2, pool: ["--workers", "1", "--threads", "1"])
        defer { _ = server.stop() }
        let metadata = try #require(try server.request("GET", "/v2/models/tiny").json)
        #expect(metadata["precision"] as? String == "f32")
        let fallback = try #require(metadata["precision_fallback"] as? [String: Any], "\(metadata)")
        #expect(fallback["from"] as? String == "bf16" && fallback["to"] as? String == "f32")
        #expect((fallback["reason"] as? String)?.contains("cannot compile") == true, "\(fallback)")
    }
}
