import Foundation
import Logging
import ModelCatalog
import TestSupport
import Testing
@testable import ModelRegistry

@Suite struct ModelConfigTests {
    func parse(_ json: String) throws(ModelRepositoryError) -> ModelConfig {
        try ModelConfig.parse(Data(json.utf8), path: "m/config.json")
    }

    @Test func everyKeyIsRead() throws {
        let config = try parse(#"{"workers": 2, "threads": 1, "max_batch": 4, "batch_delay_ms": 2.5, "engine": "onnxruntime", "precision": "f32", "device": "cpu", "version_policy": {"latest": 2}}"#)
        #expect(config.workers == 2 && config.threads == 1 && config.maxBatch == 4 && config.batchDelay == .microseconds(2500))
        #expect(config.engine == .onnxruntime && config.precision == .f32 && config.device == .cpu && config.versionPolicy == .latest(2))
        #expect(try parse("{}") == ModelConfig())
    }

    @Test("problems are named with their key", arguments: [
        (#"{"wokers": 2}"#, #"unknown key "wokers""#),
        (#"{"workers": 0}"#, #""workers" must be a whole number from 1 to 256"#),
        (#"{"workers": true}"#, #""workers" must be a whole number"#),
        (#"{"max_batch": 17}"#, #""max_batch" must be a whole number from 1 to 16"#),
        (#"{"batch_delay_ms": -1}"#, #""batch_delay_ms" must be a number of milliseconds"#),
        (#"{"engine": "tensorrt"}"#, #""engine" must be one of openvino, opencv, onnxruntime"#),
        (#"{"device": "gpu"}"#, #""device" must be cpu, cuda or cuda:N"#),
        (#"{"version_policy": {"latest": 0}}"#, #""latest" takes a whole number of versions, at least 1"#),
        (#"{"version_policy": {"specific": []}}"#, #""specific" takes a list of version numbers"#),
        (#"{"version_policy": "all"}"#, #"must be {"latest": N}, {"all": true} or {"specific": [versions]}"#),
        ("[1]", "not a JSON object"),
    ])
    func problemsAreNamed(json: String, message: String) {
        let error = #expect(throws: ModelRepositoryError.self) { try parse(json) }
        #expect(error?.description.contains(message) == true && error?.description.contains("m/config.json") == true, "\(error?.description ?? "")")
    }

    @Test func versionPoliciesChooseLikeTritons() {
        let available = [1, 2, 3, 7]
        #expect(ModelConfig.VersionPolicy.latest(1).select(from: available) == [7])
        #expect(ModelConfig.VersionPolicy.latest(2).select(from: available) == [7, 3])
        #expect(ModelConfig.VersionPolicy.all.select(from: available) == [7, 3, 2, 1])
        #expect(ModelConfig.VersionPolicy.specific([2, 9]).select(from: available) == [2])
    }
}

@Suite struct CPUAllocatorTests {
    @Test func poolsArePinnedApartWhileCPUsLastThenShareTheLeastUsed() {
        var cpus = CPUAllocator(cpus: [0, 1], sharesMask: false)
        #expect(cpus.allocate(workers: 1, threads: 1) == [[0]])
        #expect(cpus.allocate(workers: 1, threads: 1) == [[1]])
        #expect(cpus.allocate(workers: 1, threads: 1) == [[0]], "a third model shares the least-used CPU")
        #expect(cpus.description == "CPU 0: 2 workers, CPU 1: 1 worker")
        cpus.release([[0]])
        #expect(cpus.allocate(workers: 2, threads: 1) == [[0], [1]])
    }

    @Test func aWorkerOfSeveralThreadsTakesTheLeastUsedCPUs() {
        var cpus = CPUAllocator(cpus: [2, 3, 4, 5], sharesMask: false)
        #expect(cpus.allocate(workers: 1, threads: 1) == [[2]])
        #expect(cpus.allocate(workers: 1, threads: 2) == [[3, 4]])
        #expect(cpus.allocate(workers: 1, threads: 8) == [[2, 3, 4, 5]], "never more CPUs than the mask has")
    }

    @Test func underAQuotaEveryWorkerSharesTheMask() {
        var cpus = CPUAllocator(cpus: [0, 1, 2, 3], sharesMask: true)
        #expect(cpus.allocate(workers: 2, threads: 1) == [[0, 1, 2, 3], [0, 1, 2, 3]])
    }
}

/// A repository made of the catalog's files, laid out as Triton's and OVMS's are.
struct RepositoryFixture {
    let directory: URL

    init() throws {
        directory = try Fixtures.temporaryDirectory()
    }

    /// A model folder `name` holding `model`'s ONNX file at each of `versions` (none: in the folder itself).
    func add(_ name: String, model: String = "tiny", versions: [Int] = [], config: String? = nil, labels: Bool = false) throws {
        let folder = directory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let onnx = TestPaths.models.appendingPathComponent("\(model).onnx")
        for version in versions.isEmpty ? [nil] : versions.map(Optional.some) {
            let target = version.map { folder.appendingPathComponent(String($0)) } ?? folder
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(at: target.appendingPathComponent("model.onnx"), withDestinationURL: onnx)
        }
        if let config { try Data(config.utf8).write(to: folder.appendingPathComponent("config.json")) }
        if labels {
            try FileManager.default.copyItem(at: TestPaths.models.appendingPathComponent("imagenet-labels.txt"), to: folder.appendingPathComponent("labels.txt"))
        }
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

@Suite struct ModelRepositoryTests {
    @Test func foldersAreModelsAndNumberedFoldersVersions() throws {
        let repository = try RepositoryFixture()
        defer { repository.remove() }
        try repository.add("flat")
        try repository.add("versioned", versions: [1, 3], config: #"{"version_policy": {"all": true}}"#, labels: true)
        try Data().write(to: repository.directory.appendingPathComponent("README.txt"))
        let models = ModelRepository(directory: repository.directory)
        #expect(try models.modelNames() == ["flat", "versioned"])
        #expect(try models.served("flat").versions.map(\.version) == ["1"])
        #expect(try models.served("versioned").versions.map(\.version) == ["3", "1"])
        let served = try models.folder("versioned").servedEntry(name: "versioned", version: 3)
        #expect(served.version == "3" && served.entry.manifest.name == "versioned")
        #expect(served.entry.modelURL.path.hasSuffix("versioned/3/model.onnx"))
        #expect(try served.entry.labels().count == 1000)
        #expect(try models.folder("flat").servedEntry(name: "flat").version == "1")
        #expect(try ModelDirectory(directory: models.folder("versioned").directory).servedEntry(name: nil).version == "3", "a model folder serves its highest version under its number")
    }

    @Test func aMissingModelOrAPolicyThatChoosesNothingIsExplained() throws {
        let repository = try RepositoryFixture()
        defer { repository.remove() }
        try repository.add("versioned", versions: [1, 2], config: #"{"version_policy": {"specific": [7]}}"#)
        let models = ModelRepository(directory: repository.directory)
        #expect(throws: ModelRepositoryError.noVersionChosen(name: "versioned", policy: "versions 7", available: [1, 2])) { try models.served("versioned") }
        let missing = #expect(throws: ModelRepositoryError.self) { try models.served("other") }
        #expect(missing?.description == "no model other in \(repository.directory.standardizedFileURL.path) (it holds versioned)")
    }

    @Test func aBrokenConfigIsNamedWithItsFile() throws {
        let repository = try RepositoryFixture()
        defer { repository.remove() }
        try repository.add("broken", config: #"{"threads": "two"}"#)
        let error = #expect(throws: ModelRepositoryError.self) { try ModelRepository(directory: repository.directory).config("broken") }
        #expect(error?.description.contains("broken/config.json") == true && error?.description.contains("\"threads\"") == true)
    }
}

/// The registry with real pools: models of a repository loaded, looked up, unloaded and loaded
/// again, a broken one reported while the others serve, the CPUs divided.
@Suite(.serialized) struct ModelRegistryLoadingTests {
    func registry(_ repository: RepositoryFixture, control: ModelControl = .explicit) -> ModelRegistry {
        var quiet = Logger(label: "test")
        quiet.logLevel = .critical
        let logger = quiet
        let settings = ModelRegistry.Settings(engine: .init(threads: 1, precision: .f32), drainTimeout: .seconds(10)) {
            $0.workerExecutable = TestPaths.workerExecutable
            $0.logger = logger
        }
        return ModelRegistry(
            source: .repository(ModelRepository(directory: repository.directory)), control: control, settings: settings, logger: logger,
            budget: .init(mask: [0, 1], quota: nil))
    }

    @Test func modelsLoadUnloadAndLoadAgainAndABrokenOneIsReported() async throws {
        let repository = try RepositoryFixture()
        defer { repository.remove() }
        try repository.add("a")
        try repository.add("b", versions: [1, 2])
        try repository.add("broken", config: #"{"workers": "many"}"#)
        let registry = registry(repository)
        await registry.loadAtStart()
        let index = registry.index()
        #expect(index.contains(.init(name: "a", version: "1", state: .ready, reason: "")))
        #expect(index.contains(.init(name: "b", version: "2", state: .ready, reason: "")), "the latest version by default")
        let broken = try #require(index.first { $0.name == "broken" })
        #expect(broken.state == .unavailable && broken.reason.contains("\"workers\""), "\(broken)")
        guard case .served(let b) = registry.lookup("b") else { Issue.record("b serves"); return }
        #expect(b.version == "2" && b.pool.cpuSets == [[1]], "a on CPU 0, b on CPU 1: \(registry.cpuSplit)")
        try await registry.unload("a")
        guard case .notServing(.unavailable, let reason) = registry.lookup("a") else { Issue.record("a is unloaded"); return }
        #expect(reason == "unloaded")
        #expect(registry.cpuSplit == "CPU 0: 0 workers, CPU 1: 1 worker", "its CPU is free again")
        try await registry.load("a")
        guard case .served = registry.lookup("a") else { Issue.record("a serves again"); return }
        await #expect(throws: RegistryError.unknownModel("nope", known: ["a", "b", "broken"])) { try await registry.load("nope") }
        await registry.stopAll(gracePeriod: .seconds(5))
    }

    @Test func aNewVersionIsServedAndTheOldOneUnloadedOnceItIsReady() async throws {
        let repository = try RepositoryFixture()
        defer { repository.remove() }
        try repository.add("m", versions: [1])
        let registry = registry(repository, control: .poll)
        await registry.loadAtStart()
        guard case .served(let first) = registry.lookup("m") else { Issue.record("m serves"); return }
        #expect(first.version == "1")
        try repository.add("m-next", versions: [2])
        try FileManager.default.moveItem(
            at: repository.directory.appendingPathComponent("m-next/2"), to: repository.directory.appendingPathComponent("m/2"))
        try await registry.load("m")
        guard case .served(let second) = registry.lookup("m") else { Issue.record("m serves"); return }
        #expect(second.version == "2")
        #expect(registry.index().filter { $0.name == "m" }.map(\.version) == ["2"], "version 1 was drained and forgotten")
        #expect(first.pool.status.health == .stopped)
        await registry.stopAll(gracePeriod: .seconds(5))
    }
}
