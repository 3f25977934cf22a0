@testable import Benchmarking
import Foundation
import TestSupport
import Testing

@Suite struct WorkloadTests {
    static let bench = TestPaths.models.appendingPathComponent("bench")

    @Test func parsesNamesAndWeights() throws {
        let parts = try Workload.parse("imagenet=3,camera,/photos=2")
        #expect(parts.map(\.name) == ["imagenet", "camera", "/photos"])
        #expect(parts.map(\.weight) == [3, 1, 2])
    }

    @Test("bad workloads are explained", arguments: [("imagenet=0", "≥ 1"), ("imagenet=x", "≥ 1"), ("", "empty"), ("imagenet,,camera", "empty")])
    func badWorkloads(text: String, message: String) {
        #expect { try Workload.parse(text) } throws: { "\($0)".contains(message) }
    }

    @Test func theGeneratedJPEGsAreTheAdvertisedSizes() throws {
        let workload = try Workload.load("imagenet,camera", benchDirectory: Self.bench, sampleShape: [3, 224, 224])
        let sources = workload.summary.sources
        #expect(sources.map(\.name) == ["imagenet", "camera"])
        #expect(sources.allSatisfy { $0.items >= 5 })
        #expect((30_000...200_000).contains(sources[0].meanBytes), "ImageNet-size: \(sources[0].meanBytes) bytes")
        #expect((2_000_000...4_500_000).contains(sources[1].meanBytes), "camera-size: \(sources[1].meanBytes) bytes")
    }

    @Test func sourcesMixByWeightAndRequestsRepeat() throws {
        let workload = try Workload.load("imagenet=3,tensor=1", benchDirectory: Self.bench, sampleShape: [3, 8, 8])
        var tensors = 0
        var names = Set<String>()
        for index in 0..<40_000 {
            let item = workload.item(index)
            if case .tensor(let values) = item.payload {
                tensors += 1
                #expect(values.count == 3 * 8 * 8)
            }
            names.insert(item.name)
        }
        #expect(abs(Double(tensors) / 40_000 - 0.25) < 0.01)
        #expect(names.count == 6, "every image and the tensor are used: \(names)")
        #expect((0..<100).map { workload.item($0).name } == (0..<100).map { workload.item($0).name })
    }

    @Test func aMissingFolderNamesWhatMakesIt() {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-bench-\(UUID())")
        #expect { try Workload.load("camera", benchDirectory: empty, sampleShape: [3, 224, 224]) } throws: {
            "\($0)".contains("tools/setup.sh --prepare")
        }
        #expect { try Workload.load("/no/such/folder", benchDirectory: empty, sampleShape: [3, 224, 224]) } throws: {
            "\($0)".contains("no such file or folder")
        }
    }
}

@Suite struct SweepTests {
    @Test func everyCombinationWorkersSlowestBatchFastest() throws {
        let sweep = try Sweep(parsing: ["workers=1,2", "batch=1,4,8"])
        let configurations = sweep.configurations(base: BenchConfiguration(workers: 2, threads: 1, batch: 1))
        #expect(configurations.map(\.label) == ["1w×1t b1", "1w×1t b4", "1w×1t b8", "2w×1t b1", "2w×1t b4", "2w×1t b8"])
    }

    @Test func noSweepIsTheBaseConfiguration() throws {
        let base = BenchConfiguration(workers: nil, threads: 2, batch: 1)
        #expect(try Sweep(parsing: []).configurations(base: base) == [base])
    }

    @Test("bad sweeps are explained", arguments: [
        (["cores=1,2"], "NAME one of workers, threads, batch"), (["workers=0"], "≥ 1"), (["batch=1,x"], "≥ 1"),
        (["threads=1", "threads=2"], "swept twice"), (["workers"], "NAME=V1"),
    ])
    func badSweeps(terms: [String], message: String) {
        #expect { try Sweep(parsing: terms) } throws: { "\($0)".contains(message) }
    }

    @Test func recommendsTheFastestAndTheSteadiest() {
        let runs = [
            run(label: 1, imagesPerSecond: 50, p50: 30, p99: 80),
            run(label: 2, imagesPerSecond: 80, p50: 40, p99: 120),
            run(label: 3, imagesPerSecond: 95, p50: 45, p99: 150, failed: 3),
            run(label: 4, imagesPerSecond: 60, p50: 20, p99: 80),
        ]
        let recommendation = try! #require(Recommendation(runs: runs))
        #expect(recommendation.throughput.run == 1, "a run with failures is not recommended")
        #expect(recommendation.latency.run == 3, "equal p99s are split by p50")
    }

    private func run(label: Int, imagesPerSecond: Double, p50: Double, p99: Double, failed: Int = 0) -> BenchRun {
        let latency = LatencySummary(count: 100, mean: p50, min: 1, p50: p50, p90: p99, p99: p99, p999: p99, max: p99)
        let measurement = RunMeasurement(
            requests: 100, failed: failed, failures: [], images: 100, seconds: 1, imagesPerSecond: imagesPerSecond, dropped: 0,
            latency: latency, stages: [:], resources: ResourceUsage(cpus: 2, workers: []))
        return BenchRun(configuration: BenchConfiguration(workers: label, threads: 1, batch: 1), readySeconds: 1, measurement: measurement)
    }
}
