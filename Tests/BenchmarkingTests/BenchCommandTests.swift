import Foundation
import TestSupport
import Testing

/// `visionpool bench` as users run it: the built executable, its files and its errors.
@Suite(.serialized) struct BenchCommandTests {
    @Test func inProcessPrintsATable() throws {
        let run = try visionpool(["bench", "--model", "tiny", "--threads", "1", "--duration", "0.5", "--warm-up", "0.1"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("tiny · in-process (openvino, default) · tensor"), "\(run.stdout)")
        #expect(run.stdout.contains("1t b1"))
    }

    @Test func aPoolSweepWritesJSONAndAChartAndRecommends() throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let json = folder.appendingPathComponent("report.json"), chart = folder.appendingPathComponent("chart.png")
        let run = try visionpool([
            "bench", "--pool", "--model", "tiny", "--workload", "imagenet=3,tensor", "--duration", "0.5", "--warm-up", "0.2",
            "--sweep", "workers=1,64", "batch=1,2", "--json", json.path, "--chart", chart.path,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        #expect(try SchemaValidator(file: ReportTests.schema).violations(of: report).isEmpty)
        let runs = try #require(report["runs"] as? [[String: Any]])
        #expect(runs.count == 2, "1 worker with batch 1 and 2")
        let skipped = try #require(report["skipped"] as? [[String: Any]])
        #expect(skipped.count == 2 && (skipped[0]["reason"] as? String)?.contains("CPUs") == true, "64 workers do not fit")
        let recommendation = try #require(report["recommendation"] as? [String: Any])
        #expect(recommendation["throughput"] != nil && recommendation["latency"] != nil)
        #expect(run.stdout.contains("recommended for throughput") && run.stdout.contains("skipped 64w×1t b1"))
        let png = try Data(contentsOf: chart)
        #expect(Array(png.prefix(4)) == [0x89, 0x50, 0x4E, 0x47])
    }

    @Test func anOnnxRuntimePoolReportsItsEngineAndDevice() throws {
        let run = try visionpool([
            "bench", "--pool", "--engine", "onnxruntime", "--model", "tiny", "--workers", "1", "--duration", "0.5", "--warm-up", "0.1", "--json", "-",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(try SchemaValidator(file: ReportTests.schema).violations(of: report).isEmpty)
        let target = try #require(report["target"] as? [String: Any])
        #expect(target["engine"] as? String == "onnxruntime" && target["device"] as? String == "cpu", "\(target)")
    }

    @Test func aRunningServerOverItsSocket() throws {
        let server = try ServerHarness(["--model", "tiny"])
        defer { server.stop() }
        let run = try visionpool(["bench", "--socket", server.socket, "--model", "tiny", "--rate", "40", "--duration", "1", "--warm-up", "0.2",
                                  "--json", "-"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect((report["target"] as? [String: Any])?["kind"] as? String == "socket")
        #expect((report["load"] as? [String: Any])?["mode"] as? String == "open")
        let measurement = try #require((report["runs"] as? [[String: Any]])?.first?["measurement"] as? [String: Any])
        #expect((measurement["requests"] as? Int ?? 0) > 10 && measurement["failed"] as? Int == 0)
    }

    /// `--models` spreads the requests over a server's models by weight and reports each apart:
    /// shares follow the weights, and the parts add up to the whole.
    @Test func aMixedWorkloadOverTwoModelsReportsEach() throws {
        let server = try ServerHarness(["--model", "tiny", "--model", "efficientnet-lite0"])
        defer { server.stop() }
        let run = try visionpool(["bench", "--socket", server.socket, "--models", "tiny=3,efficientnet-lite0", "--workload", "imagenet",
                                  "--requests", "200", "--warm-up", "0.2", "--json", "-"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(try SchemaValidator(file: ReportTests.schema).violations(of: report).isEmpty)
        #expect(report["model"] as? String == "tiny×3 + efficientnet-lite0×1")
        let measurement = try #require((report["runs"] as? [[String: Any]])?.first?["measurement"] as? [String: Any])
        let models = try #require(measurement["models"] as? [[String: Any]])
        #expect(models.map { $0["model"] as? String } == ["tiny", "efficientnet-lite0"])
        let requests = models.map { $0["requests"] as? Int ?? 0 }
        #expect(requests.reduce(0, +) == measurement["requests"] as? Int && measurement["failed"] as? Int == 0, "\(models)")
        #expect(requests[0] > 2 * requests[1] && requests[1] > 20, "weights 3:1 gave \(requests)")

        let table = try visionpool(["bench", "--socket", server.socket, "--models", "tiny,efficientnet-lite0", "--workload", "tensor",
                                    "--requests", "20", "--warm-up", "0"])
        #expect(table.status == 0 && table.stdout.contains("efficientnet-lite0"), "\(table.stderr)")
    }

    /// The open loop offers what was asked: requests go out at the Poisson rate, on time. In its
    /// own process, so the rest of the suite cannot starve the load generator's threads.
    @Test func theOpenLoopKeepsItsRate() throws {
        let rate = 200.0
        let run = try visionpool(["bench", "--model", "tiny", "--threads", "1", "--rate", String(rate), "--duration", "3", "--warm-up", "0.3",
                                  "--json", "-"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let measurement = try #require((report["runs"] as? [[String: Any]])?.first?["measurement"] as? [String: Any])
        let achieved = try #require(measurement["achieved_rate"] as? Double)
        #expect(abs(achieved / rate - 1) < 0.1, "asked for \(rate)/s, sent at \(achieved)/s")
        let requests = try #require(measurement["requests"] as? Int)
        #expect(abs(Double(requests) / 3 / rate - 1) < 0.15, "\(requests) requests in 3 s")
        let lag = try #require(measurement["send_lag"] as? [String: Any])
        #expect(try #require(lag["p90"] as? Double) < 25, "requests went out late: \(lag)")
        #expect(measurement["offered_rate"] as? Double == rate && measurement["dropped"] as? Int == 0 && measurement["failed"] as? Int == 0)
    }

    @Test("bad bench arguments are explained", arguments: [
        (["bench", "--pool", "--in-process"], "choose one target"),
        (["bench", "--socket", "/tmp/x.sock", "--sweep", "batch=1,2"], "a running server's shape is fixed"),
        (["bench", "--in-process", "--sweep", "workers=1,2"], "needs --pool"),
        (["bench", "--sweep", "cores=2"], "NAME one of workers, threads, batch"),
        (["bench", "--concurrency", "2", "--rate", "10"], "give one"),
        (["bench", "--rate", "0"], "--rate must be a positive"),
        (["bench", "--workload", "imagenet=0"], "≥ 1"),
        (["bench", "--workload", "/no/such/folder", "--model", "tiny"], "no such file or folder"),
        (["bench", "--socket", "/no/such.sock"], "nothing answers on /no/such.sock"),
        (["bench", "--pool", "--models", "tiny,resnet18"], "--models spreads requests over a server's models"),
        (["bench", "--socket", "/tmp/x.sock", "--model", "tiny", "--models", "tiny"], "give --model or --models"),
    ])
    func badArguments(arguments: [String], message: String) throws {
        let run = try visionpool(arguments)
        #expect(run.status != 0)
        #expect(run.stderr.contains(message), "\(run.stderr)")
    }

    @Test func helpExplainsTargetsWorkloadsLoadsAndOutputs() throws {
        let run = try visionpool(["bench", "--help"])
        #expect(run.status == 0)
        for text in ["--in-process", "--pool", "--socket", "--url", "--workload", "--concurrency", "--rate", "--sweep", "--json", "--chart",
                     "--requests", "--models", "camera", "Poisson"] {
            #expect(run.stdout.contains(text), "\(text)")
        }
    }
}
