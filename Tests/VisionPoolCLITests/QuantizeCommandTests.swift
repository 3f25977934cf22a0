import Foundation
import ModelCatalog
import TestSupport
import Testing

/// A catalog holding copies of `models` and the ImageNet labels.
func catalog(with models: [String]) throws -> URL {
    let directory = try Fixtures.temporaryDirectory()
    for file in models.flatMap({ ["\($0).json", "\($0).onnx"] }) + ["imagenet-labels.txt"] {
        try FileManager.default.copyItem(at: TestPaths.models.appendingPathComponent(file), to: directory.appendingPathComponent(file))
    }
    return directory
}

/// `visionpool models quantize` end to end: NNCF, the bundled photos and OpenVINO, on small
/// sets so the suite stays short. Each test quantizes into its own temporary catalog.
@Suite(.serialized) struct QuantizeCommandTests {
    func files(in directory: URL) throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: directory.path))
    }

    @Test func quantizingTinyRecordsItsAgreementAndServesIt() throws {
        let directory = try catalog(with: ["tiny"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try visionpool([
            "models", "quantize", "tiny", "--models-dir", directory.path, "--min-agreement", "0.8",
            "--calibration-size", "60", "--validation-size", "120",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let entry = try ModelCatalog(directory: directory).entry(named: "tiny-int8")
        let quantization = try #require(entry.manifest.quantization)
        #expect(entry.manifest.isQuantized && entry.isInstalled)
        #expect(quantization.calibration.inputs == 60 && quantization.validation.inputs == 120)
        #expect(quantization.top1Agreement >= 0.8 && quantization.minAgreement == 0.8)
        let printed = String(format: "top-1 agreement %.1f%%", quantization.top1Agreement * 100)
        #expect(run.stdout.contains(printed), "the manifest records what was measured: \(run.stdout)")

        let listing = try visionpool(["models", "--models-dir", directory.path])
        #expect(listing.stdout.contains("tiny-int8") && listing.stdout.contains("precision   int8"), "\(listing.stdout)")
        #expect(listing.stdout.contains(String(format: "top-1 agreement %.1f %% with tiny", quantization.top1Agreement * 100)))

        let classify = try visionpool(
            ["classify", "--model", "tiny-int8", "--workers", "1", "--threads", "1", TestPaths.samples.appendingPathComponent("chelsea.png").path],
            environment: ["VISIONPOOL_MODELS": directory.path])
        #expect(classify.status == 0, "\(classify.stderr)")
        #expect(classify.stderr.contains("synthetic weights"), "an int8 copy of a synthetic model still says so")
    }

    @Test func aSmallRealModelQuantizes() throws {
        let directory = try catalog(with: ["efficientnet-lite0"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try visionpool([
            "models", "quantize", "efficientnet-lite0", "--name", "lite-int8", "--models-dir", directory.path, "--recipes", "default",
            "--min-agreement", "0.5", "--calibration-size", "30", "--validation-size", "60",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let quantization = try #require(try ModelCatalog(directory: directory).entry(named: "lite-int8").manifest.quantization)
        #expect(quantization.recipe == "default" && quantization.sourceModel == "efficientnet-lite0")
        #expect(quantization.top1Agreement >= 0.5)
        #expect((quantization.openvino?.kernels["int8"] ?? 0) > 10)
    }

    @Test func belowTheThresholdNothingIsWritten() throws {
        let directory = try catalog(with: ["tiny"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let before = try files(in: directory)
        // One 1×1-pixel image: every calibration view is one flat colour, so the ranges are useless.
        let degenerate = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: degenerate) }
        try FileManager.default.copyItem(at: TestPaths.fixtures.appendingPathComponent("tiny.png"), to: degenerate.appendingPathComponent("tiny.png"))
        let run = try visionpool([
            "models", "quantize", "tiny", "--models-dir", directory.path, "--calibration", degenerate.path, "--min-agreement", "0.5",
            "--calibration-size", "20", "--validation-size", "100",
        ])
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("nothing written") && run.stderr.contains("50.0%"), "\(run.stderr)")
        #expect(try files(in: directory) == before)
    }

    @Test func anUnreadableCalibrationImageIsNamed() throws {
        let directory = try catalog(with: ["tiny"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let corrupt = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: corrupt) }
        for name in ["cat.jpg", "truncated.png"] {
            try FileManager.default.copyItem(at: TestPaths.fixtures.appendingPathComponent(name), to: corrupt.appendingPathComponent(name))
        }
        let run = try visionpool(["models", "quantize", "tiny", "--models-dir", directory.path, "--calibration", corrupt.path])
        #expect(run.status != 0)
        #expect(run.stderr.contains("truncated.png") && run.stderr.contains("nothing written"), "\(run.stderr)")
        #expect(try files(in: directory) == ["tiny.json", "tiny.onnx", "imagenet-labels.txt"])
    }

    @Test("bad requests are explained", arguments: [
        (["models", "quantize", "nope"], "no model nope"),
        (["models", "quantize", "tiny", "--min-agreement", "97"], "--min-agreement"),
        (["models", "quantize", "tiny", "--recipes", "fastest"], "unknown recipe fastest"),
        (["models", "quantize", "resnet50-int8"], "already an int8 model"),
    ])
    func badRequests(arguments: [String], message: String) throws {
        let run = try visionpool(arguments)
        #expect(run.status != 0)
        #expect(run.stderr.contains(message), "\(run.stderr)")
    }
}
