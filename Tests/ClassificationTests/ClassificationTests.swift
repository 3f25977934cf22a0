import Classification
import Foundation
import ImagePipeline
import InferenceEngines
import ModelCatalog
import TestSupport
import Testing

@Suite struct TopClassesTests {
    @Test func softmaxOrdersAndNormalizes() {
        let logits: [Float] = [1, 3, 2, -1]
        let top = logits.withUnsafeBufferPointer { topClasses(scores: $0, kind: .logits, labels: ["a", "b", "c", "d"], k: 3) }
        #expect(top.map(\.classIndex) == [1, 2, 0])
        #expect(top.map(\.label) == ["b", "c", "a"])
        let all = logits.map { expf($0) }.reduce(0, +)
        #expect(abs(top[0].score - expf(3) / all) < 1e-6)
    }

    @Test func largeLogitsStayFinite() {
        let logits: [Float] = [1000, 999, -1000]
        let top = logits.withUnsafeBufferPointer { topClasses(scores: $0, kind: .logits, labels: [], k: 5) }
        #expect(top.count == 3 && top.allSatisfy { $0.score.isFinite })
        #expect(top[0].label == "class 0")
    }

    @Test func probabilitiesAreKept() {
        let probabilities: [Float] = [0.1, 0.7, 0.2]
        let top = probabilities.withUnsafeBufferPointer { topClasses(scores: $0, kind: .probabilities, labels: ["x", "y", "z"], k: 1) }
        #expect(top == [ScoredClass(classIndex: 1, label: "y", score: 0.7)])
    }
}

@Suite struct InProcessClassifierTests {
    static let engines: [EngineOptions] = [
        EngineOptions(kind: .openvino, threads: 2), EngineOptions(kind: .openvino, threads: 2, precision: .f32),
        EngineOptions(kind: .opencv, threads: 2),
    ]

    @Test("real photos are classified right end to end", arguments: engines)
    func realPhotos(options: EngineOptions) throws {
        let classifier = try InProcessClassifier(entry: try Fixtures.catalog.entry(named: "efficientnet-lite0"), engineOptions: options)
        let cat = try classifier.classify(try Fixtures.sample("chelsea.png"), top: 5)
        #expect(catClasses.contains(cat.top[0].classIndex), "\(cat.top)")
        let coffee = try classifier.classify(try Fixtures.sample("coffee.png"), top: 5)
        #expect(!coffeeClasses.isDisjoint(with: coffee.top.map(\.classIndex)), "\(coffee.top)")
        let inference = try #require(cat.stages[.inference])
        #expect(cat.totalSeconds >= inference + (cat.stages[.decode] ?? 0) && inference > 0)
        #expect(cat.image.info == ImageInfo(format: .png, width: 451, height: 300))
    }

    @Test func badImageIsAnImageErrorAndTheNextOneWorks() throws {
        let classifier = try InProcessClassifier(entry: try Fixtures.catalog.entry(named: "efficientnet-lite0"), engineOptions: EngineOptions(threads: 1))
        let error = #expect(throws: ClassificationError.self) { try classifier.classify(try Fixtures.image("truncated.jpg"), top: 5) }
        guard case .image(let decoding)? = error else {
            Issue.record("expected an image error, got \(String(describing: error))")
            return
        }
        #expect(decoding.kind == .truncated)
        #expect(catClasses.contains(try classifier.classify(try Fixtures.image("cat.jpg"), top: 1).top[0].classIndex))
    }
}

extension EngineOptions: CustomTestStringConvertible {
    public var testDescription: String { "\(kind.rawValue) \(precision.rawValue)" }
}

@Suite struct StageTimesTests {
    @Test func readsTheStagesAServerReports() {
        let stages = StageTimes(serverTiming: "queue;dur=0.250, decode;dur=2.000, inference;desc=\"engine\";dur=9.5, total;dur=12")
        #expect(stages == StageTimes([.queue: 0.00025, .decode: 0.002, .inference: 0.0095]))
        #expect(StageTimes(serverTiming: "").seconds.isEmpty)
        #expect(StageTimes(serverTiming: "garbage;;dur=x,,").seconds.isEmpty)
    }

    @Test func serverTimingRoundTripsInStageOrder() {
        let stages = StageTimes([.inference: 0.0095, .queue: 0.00025, .preprocess: 0.001])
        #expect(stages.serverTiming == "queue;dur=0.250, preprocess;dur=1.000, inference;dur=9.500")
        #expect(StageTimes(serverTiming: stages.serverTiming) == stages)
    }

    @Test("milliseconds are written as %.3f writes them", arguments: [0, 0.000_000_4, 0.000_25, 0.001, 0.012_345_6, 0.999_999_6, 12.5, 3600])
    func millisecondsAsPrintfWritesThem(seconds: Double) {
        let stages = StageTimes([.decode: seconds])
        #expect(stages.serverTiming == "decode;dur=\(String(format: "%.3f", seconds * 1000))")
    }

    @Test func aRequestOfManySamplesTakesEachStagesSlowest() {
        let first = StageTimes([.queue: 1, .decode: 5]), second = StageTimes([.queue: 3, .inference: 2])
        #expect(first.slowest(second) == StageTimes([.queue: 3, .decode: 5, .inference: 2]))
        #expect(first.merging(second) == StageTimes([.queue: 4, .decode: 5, .inference: 2]))
    }
}
