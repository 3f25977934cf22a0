import Benchmarking
import Classification
import Foundation
import Glibc
import ImagePipeline
import InferenceEngines
import ModelCatalog
import Synchronization
import SystemSupport
import TestSupport
import Testing
import WorkerPool

/// Short real runs against every target: the engine in this process, the worker pool, and
/// `visionpool serve` over its Unix socket and over loopback TCP. Runs end after a request
/// count, not a time, so a busy machine (the rest of the suite runs alongside) slows them
/// down without starving them of requests.
@Suite(.serialized) struct TargetRunTests {
    /// Runs end at 40 requests; the duration is only a cap, wide enough for a loaded 2-CPU
    /// machine running other suites beside these (a 60 s cap was once reached there).
    static let limits = RunLimits(warmUp: .milliseconds(100), duration: .seconds(300), requests: 40)

    static func tiny() throws -> CatalogEntry { try Fixtures.catalog.entry(named: "tiny") }

    static func workload(_ text: String) throws -> Workload {
        try Workload.load(text, benchDirectory: TestPaths.models.appendingPathComponent("bench"), sampleShape: try tiny().manifest.input.shape)
    }

    static func inProcessTarget(batch: Int = 1) throws -> InProcessTarget {
        let entry = try tiny()
        let engine = try makeEngine(model: try EngineModel(file: entry.installedModelURL(), sampleShape: entry.manifest.input.shape,
                                                           outputCount: entry.manifest.output.classes), options: EngineOptions(threads: 1))
        return InProcessTarget(engine: engine, spec: PreprocessSpec(entry.manifest.preprocessing), batch: batch)
    }

    /// What every run must show, whatever the target.
    static func expectSound(_ measurement: RunMeasurement, imagesPerRequest: Int = 1) {
        #expect(measurement.requests == 40 && measurement.failed == 0, "\(measurement.failures)")
        #expect(measurement.images == measurement.requests * imagesPerRequest)
        #expect(abs(measurement.imagesPerSecond - Double(measurement.images) / measurement.seconds) < 1e-6)
        #expect(measurement.latency.count == measurement.requests)
        let latency = measurement.latency
        #expect(latency.min <= latency.p50 && latency.p50 <= latency.p90 && latency.p90 <= latency.p99 && latency.p99 <= latency.max)
    }

    @Test("the in-process engine, tensors and JPEGs", arguments: [("tensor", 1), ("imagenet", 1), ("imagenet", 3)])
    func inProcess(workload: String, batch: Int) async throws {
        let target = try Self.inProcessTarget(batch: batch)
        let progress = Mutex<[RunProgress]>([])
        let measurement = await LoadRunner.run(
            target: target, workload: try Self.workload(workload), load: .closed(concurrency: 2), limits: Self.limits,
            progress: { update in progress.withLock { $0.append(update) } })
        Self.expectSound(measurement, imagesPerRequest: batch)
        #expect(Set(measurement.stages.keys) == ["queue", "decode", "preprocess", "inference"])
        let resources = measurement.resources
        #expect(resources.front?.pid == getpid() && resources.workers.isEmpty && resources.client == nil)
        #expect((resources.front?.peakRSSBytes ?? 0) > 10 << 20)
        // The machine's CPU time is counted in the kernel's 10 ms ticks (/proc/stat): a release
        // build can finish 40 tensors within one, and then there is no machine figure to give.
        #expect(resources.cpuUtilization != nil && (resources.machineCPUUtilization != nil || measurement.seconds < 0.02))
        let updates = progress.withLock { $0 }
        #expect(updates.allSatisfy { (0...1).contains($0.fraction) })
        #expect(updates.last?.fraction == 1 && updates.last?.completed == 40, "the last update is the finished run")
    }

    @Test func aRequestCountEndsTheRunEarly() async throws {
        let measurement = await LoadRunner.run(
            target: try Self.inProcessTarget(), workload: try Self.workload("tensor"), load: .closed(concurrency: 1),
            limits: RunLimits(warmUp: .zero, duration: .seconds(60), requests: 25))
        #expect(measurement.requests == 25)
        #expect(measurement.seconds < 30)
    }

    @Test func thePool() async throws {
        let entry = try Self.tiny()
        var configuration = try PoolConfiguration(entry: entry, engine: EngineOptions(threads: 1), workers: 2, threadsPerWorker: 1, maxBatch: 2,
                                                  batchDelay: .milliseconds(1))
        configuration.workerExecutable = TestPaths.workerExecutable
        let pool = try WorkerPool(configuration: configuration)
        try await pool.start()
        let measurement = await LoadRunner.run(
            target: PoolTarget(pool: pool, spec: PreprocessSpec(entry.manifest.preprocessing)), workload: try Self.workload("imagenet"),
            load: .closed(concurrency: 4), limits: Self.limits)
        let workers = pool.status.workers.map(\.pid)
        await pool.shutdown()
        Self.expectSound(measurement)
        #expect(Set(measurement.stages.keys) == ["queue", "decode", "preprocess", "inference", "handoff"])
        let resources = measurement.resources
        #expect(resources.front?.pid == getpid())
        #expect(resources.workers.map(\.pid) == workers.sorted())
        #expect(resources.workers.allSatisfy { $0.peakRSSBytes > 10 << 20 })
    }

    @Test func aServerOverItsUnixSocket() async throws {
        let server = try ServerHarness(["--model", "tiny"])
        defer { server.stop() }
        let target = try await HTTPTarget.connect(socketPath: server.socket, model: "tiny", connections: 4)
        let measurement = await LoadRunner.run(target: target, workload: try Self.workload("imagenet=2,tensor"), load: .closed(concurrency: 4),
                                               limits: Self.limits)
        await target.close()
        Self.expectSound(measurement)
        #expect(Set(measurement.stages.keys) == ["receive", "parse", "queue", "decode", "preprocess", "inference", "handoff", "respond"],
                "from the server's Server-Timing header")
        let resources = measurement.resources
        #expect(resources.front?.pid == server.process.processIdentifier)
        #expect(resources.workers.count == 2, "the server's two workers")
        #expect(resources.client?.pid == getpid())
        #expect(resources.cpuUtilization != nil)
        #expect(resources.front?.cpus == availableCPUs(of: server.process.processIdentifier).count)
        let frontBound = try #require(measurement.frontBoundImagesPerSecond)
        #expect(frontBound >= measurement.imagesPerSecond * 0.9, "the front cannot have answered faster than its CPUs allow")
    }

    @Test func aServerOverLoopbackTCP() async throws {
        let port = try freeLoopbackPort()
        let server = try ServerHarness(["--model", "tiny", "--tcp", "127.0.0.1:\(port)"])
        defer { server.stop() }
        let target = try await HTTPTarget.connect(url: "http://127.0.0.1:\(port)", model: "tiny", connections: 2)
        let measurement = await LoadRunner.run(target: target, workload: try Self.workload("imagenet"), load: .open(rate: 100), limits: Self.limits)
        await target.close()
        Self.expectSound(measurement)
        #expect(measurement.resources.front == nil && measurement.resources.cpuUtilization == nil, "a URL's server may be anywhere")
        #expect(measurement.resources.machineCPUUtilization != nil)
    }

    /// The same server over gRPC, on its Unix socket and on loopback TCP: images and tensors
    /// answered, stage times from the reply's server-timing metadata, the server's processes
    /// found behind the socket.
    @Test func aServerOverGRPC() async throws {
        let port = try freeLoopbackPort()
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let socket = folder.appendingPathComponent("grpc.sock").path
        let server = try ServerHarness(["--model", "tiny", "--grpc-socket", socket, "--grpc", "127.0.0.1:\(port)"])
        defer { server.stop() }
        for connect in [
            { try await GRPCTarget.connect(socketPath: socket, model: "tiny") },
            { try await GRPCTarget.connect(hostAndPort: "127.0.0.1:\(port)", model: "tiny") },
        ] as [@Sendable () async throws -> GRPCTarget] {
            let target = try await connect()
            let measurement = await LoadRunner.run(
                target: target, workload: try Self.workload("imagenet=2,tensor"), load: .closed(concurrency: 4), limits: Self.limits)
            await target.close()
            Self.expectSound(measurement)
            #expect(Set(measurement.stages.keys) == ["parse", "queue", "decode", "preprocess", "inference", "handoff", "respond"], "from server-timing")
        }
        await #expect { try await GRPCTarget.connect(hostAndPort: "127.0.0.1:\(port)", model: "resnet50") } throws: { "\($0)".contains("notFound") }
    }

    /// A request the server refuses is counted and named, and the run goes on.
    @Test func failedRequestsAreCountedAndNamed() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(repeating: 0x5A, count: 4096).write(to: folder.appendingPathComponent("noise.jpg"))
        try FileManager.default.copyItem(at: TestPaths.samples.appendingPathComponent("rocket.jpg"), to: folder.appendingPathComponent("rocket.jpg"))
        let server = try ServerHarness(["--model", "tiny"])
        defer { server.stop() }
        let target = try await HTTPTarget.connect(socketPath: server.socket, model: "tiny", connections: 2)
        let workload = try Workload.load(folder.path, benchDirectory: folder, sampleShape: [3, 224, 224])
        let measurement = await LoadRunner.run(target: target, workload: workload, load: .closed(concurrency: 2), limits: Self.limits)
        await target.close()
        #expect(measurement.requests + measurement.failed == 40 && measurement.requests > 0 && measurement.failed > 0)
        #expect(measurement.failures.count == 1 && measurement.failures[0].message.hasPrefix("HTTP 400"), "\(measurement.failures)")
    }

    @Test func aSocketNobodyListensOnIsNamed() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("no-server-\(UUID()).sock").path
        await #expect { try await HTTPTarget.connect(socketPath: path, model: "tiny", connections: 1) } throws: {
            "\($0)".contains("nothing answers on \(path)")
        }
    }

    @Test func anUnknownModelIsNamed() async throws {
        let server = try ServerHarness(["--model", "tiny"])
        defer { server.stop() }
        await #expect { try await HTTPTarget.connect(socketPath: server.socket, model: "resnet50", connections: 1) } throws: {
            "\($0)".contains("HTTP 404") && "\($0)".contains("unknown model")
        }
    }
}
