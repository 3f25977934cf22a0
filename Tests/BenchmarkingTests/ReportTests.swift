@testable import Benchmarking
import Foundation
import TestSupport
import Testing

@Suite struct ReportTests {
    static let schema = TestPaths.root.appendingPathComponent("docs/bench-report.schema.json")

    /// A report of two real short runs of the in-process engine.
    static func report() async throws -> BenchReport {
        var runs: [BenchRun] = []
        for batch in [1, 2] {
            let measurement = await LoadRunner.run(
                target: try TargetRunTests.inProcessTarget(batch: batch), workload: try TargetRunTests.workload("imagenet"),
                load: .closed(concurrency: 1), limits: TargetRunTests.limits)
            runs.append(BenchRun(configuration: BenchConfiguration(workers: nil, threads: 1, batch: batch), readySeconds: 0.1, measurement: measurement))
        }
        return BenchReport(
            startedAt: Date(), model: "tiny", target: BenchReport.Target(kind: "in-process", engine: "openvino", precision: "default"),
            workload: try TargetRunTests.workload("imagenet").summary,
            load: BenchReport.Load(.closed(concurrency: 1), limits: TargetRunTests.limits),
            runs: runs, skipped: [SkippedRun(configuration: BenchConfiguration(workers: 4, threads: 1, batch: 1), reason: "needs 4 CPUs")])
    }

    @Test func theJSONFollowsTheDocumentedSchema() async throws {
        let report = try await Self.report()
        let json = try JSONSerialization.jsonObject(with: report.json())
        let problems = try SchemaValidator(file: Self.schema).violations(of: json)
        #expect(problems.isEmpty, "\(problems)")
        let object = try #require(json as? [String: Any])
        #expect(object["schema_version"] as? Int == BenchReport.currentSchemaVersion)
        #expect(object["recommendation"] != nil, "two configurations ran")
    }

    /// The validator is strict: a field the schema does not know, a missing one or a wrong type fails.
    @Test func theSchemaCheckCatchesDrift() throws {
        let validator = try SchemaValidator(file: Self.schema)
        let minimal: [String: Any] = [
            "schema_version": 1, "tool": "visionpool bench", "started_at": "2026-11-22T00:00:00Z", "model": "tiny",
            "host": ["cpus": 2, "cpu_model": "x", "kernel": "6"], "target": ["kind": "pool"],
            "workload": ["description": "tensor", "sources": [["name": "tensor", "weight": 1, "items": 1, "mean_bytes": 4]]],
            "load": ["mode": "closed", "concurrency": 1, "warm_up_seconds": 0, "duration_seconds": 1], "runs": [], "skipped": [],
        ]
        #expect(validator.violations(of: minimal).isEmpty)
        var extra = minimal
        extra["surprise"] = true
        #expect(validator.violations(of: extra) == ["$: surprise is not in the schema"])
        var missing = minimal
        missing["model"] = nil
        #expect(validator.violations(of: missing) == ["$: missing model"])
        var wrong = minimal
        wrong["target"] = ["kind": "carrier-pigeon"]
        #expect(validator.violations(of: wrong).count == 1)
    }

    @Test func theChartIsAPNGOfTheExpectedSize() async throws {
        let report = try await Self.report()
        for (width, height) in [(BenchChart.defaultSize.width, BenchChart.defaultSize.height), (800, 420)] {
            let png = try BenchChart.png(report, width: width, height: height)
            #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
            #expect(String(decoding: png[12..<16], as: UTF8.self) == "IHDR")
            #expect(bigEndian(png, at: 16) == width && bigEndian(png, at: 20) == height)
            #expect(png.count > 10_000, "bars, axes and text, not a blank canvas")
        }
    }

    @Test func theTableShowsEveryRunAndTheRecommendation() async throws {
        let table = try await Self.report().table
        for text in ["1t b1", "1t b2", "images/s", "p99.9 ms", "decode ms", "recommended for throughput", "recommended for latency",
                     "skipped 4w×1t b1: needs 4 CPUs", "tiny · in-process (openvino, default) · imagenet"] {
            #expect(table.contains(text), "\(text)")
        }
    }

    @Test func roundStepsForAxes() {
        #expect(niceStep(0.7) == 1 && niceStep(1.3) == 2 && niceStep(3) == 5 && niceStep(7) == 10 && niceStep(42) == 50)
    }

    private func bigEndian(_ data: Data, at offset: Int) -> Int {
        data[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
    }
}
