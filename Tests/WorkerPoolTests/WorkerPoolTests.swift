import Classification
import Foundation
import Glibc
import InferenceEngines
import ModelCatalog
import TestSupport
import Testing
@testable import WorkerPool

/// The pool's worker processes that are children of this test process.
func poolChildren() -> [Int32] {
    childrenOf(getpid()).filter { pid in
        let command = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        return command.split(separator: 0).first.map { String(decoding: $0, as: UTF8.self).hasSuffix("/visionpool-worker") } ?? false
    }
}

/// Descriptors and mappings of this process that belong to a pool: pidfds, and the arena
/// with inode `arena` (other suites make arenas of their own in parallel).
func poolResources(arena: UInt64) -> [String] {
    let descriptors = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { fd -> String? in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)") else { return nil }
        var status = stat()
        let isArena = stat("/proc/self/fd/\(fd)", &status) == 0 && UInt64(status.st_ino) == arena
        return isArena || target.contains("[pidfd]") ? target : nil
    }
    let maps = (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8))?.split(separator: "\n").filter {
        $0.contains("visionpool-arena") && $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).first == Substring(String(arena))
    } ?? []
    return descriptors + maps.map(String.init)
}

/// The inode of a pool's arena memfd.
func arenaInode(_ pool: WorkerPool) -> UInt64 {
    var status = stat()
    fstat(pool.arena.descriptor.rawValue, &status)
    return UInt64(status.st_ino)
}

func configuration(
    model: String = "resnet18", workers: Int = 2, threads: Int = 1, maxBatch: Int = 1, precision: Precision = .f32, engine: EngineKind = .openvino
) throws -> PoolConfiguration {
    let entry = try Fixtures.catalog.entry(named: model)
    var configuration = try PoolConfiguration(
        entry: entry, engine: EngineOptions(kind: engine, precision: precision), workers: workers, threadsPerWorker: threads, maxBatch: maxBatch,
        batchDelay: .milliseconds(5))
    configuration.workerExecutable = TestPaths.workerExecutable
    configuration.oversubscribe = true
    return configuration
}

/// Runs one deterministic tensor through the pool and returns its scores and receipt.
func infer(_ pool: WorkerPool, value: Float = 0.25) async throws -> ([Float], InferenceReceipt) {
    try await pool.infer(prepare: { $0.initialize(repeating: value) }, consume: { (Array($0), $1) })
}

@Suite(.serialized) struct WorkerPoolTests {
    @Test func poolResultsAreIdenticalToInProcess() async throws {
        let entry = try Fixtures.catalog.entry(named: "efficientnet-lite0")
        let inProcess = try InProcessClassifier(entry: entry, engineOptions: EngineOptions(threads: 1, precision: .f32))
        let pool = try await PoolClassifier(entry: entry, configuration: try configuration(model: "efficientnet-lite0"))
        for photo in ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png", "motorcycle_left.png"] {
            let image = try Fixtures.sample(photo)
            let expected = try inProcess.classify(image, top: 5).top
            let pooled = try await pool.classify(image, top: 5).top
            #expect(pooled.map(\.classIndex) == expected.map(\.classIndex), "\(photo)")
            #expect(zip(pooled, expected).allSatisfy { abs($0.score - $1.score) <= 1e-6 }, "\(photo)")
        }
        let cat = try await pool.classify(try Fixtures.sample("chelsea.png"), top: 1)
        #expect(catClasses.contains(cat.top[0].classIndex))
        await pool.shutdown()
    }

    @Test func workersArePinnedToDisjointCPUSets() async throws {
        var settings = try configuration()
        settings.oversubscribe = false
        let pool = try WorkerPool(configuration: settings)
        try await pool.start()
        let workers = pool.status.workers
        #expect(workers.count == 2)
        var seen = Set<Int>()
        for worker in workers {
            let cpus = allowedCPUs(worker.pid)
            #expect(cpus == pool.cpuSets[worker.seat], "worker \(worker.pid)")
            #expect(seen.isDisjoint(with: cpus))
            seen.formUnion(cpus)
        }
        await pool.shutdown()
    }

    @Test("engines bind the slot memory itself", arguments: [EngineKind.openvino, .onnxruntime])
    func enginesBindTheSlotMemoryItself(engine: EngineKind) async throws {
        let pool = try WorkerPool(configuration: try configuration(maxBatch: 4, engine: engine))
        try await pool.start()
        try await withThrowingTaskGroup(of: InferenceReceipt.self) { group in
            for index in 0..<8 { group.addTask { try await infer(pool, value: Float(index)).1 } }
            for try await receipt in group {
                #expect(receipt.reportedInputOffset == receipt.slotInputOffset)
                #expect(receipt.reportedOutputOffset == receipt.slotOutputOffset)
            }
        }
        await pool.shutdown()
    }

    @Test func onnxRuntimeWorkersRunTheirThreadCount() async throws {
        /// Threads of the pool's one worker, with `threads` intra-op threads.
        func workerThreads(_ threads: Int) async throws -> Int {
            let pool = try WorkerPool(configuration: try configuration(model: "tiny", workers: 1, threads: threads, engine: .onnxruntime))
            try await pool.start()
            _ = try await infer(pool)
            let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pool.status.workers[0].pid)/task").count
            await pool.shutdown()
            return tasks
        }
        let one = try await workerThreads(1), two = try await workerThreads(2)
        // ONNX Runtime's intra-op pool has threads - 1 threads of its own: the caller is the other.
        #expect(two - one == 1, "1 thread: \(one) threads in the worker, 2 threads: \(two)")
    }

    /// The path a GPU worker pins its slots through (cudaHostRegister there), taken on the CPU
    /// with mlock: each worker holds the whole arena locked, and still serves.
    @Test func lockedSlotsAreLockedInEveryWorker() async throws {
        var settings = try configuration(model: "tiny")
        settings.lockSlots = true
        let pool = try WorkerPool(configuration: settings)
        try await pool.start()
        let arenaKilobytes = pool.arena.layout.totalSize / 1024
        for worker in pool.status.workers {
            #expect((lockedKilobytes(pid: "\(worker.pid)") ?? 0) >= arenaKilobytes, "worker \(worker.pid)")
        }
        _ = try await infer(pool)
        await pool.shutdown()
    }

    /// Dynamic batching with one worker, decided by events: an idle worker takes a lone request
    /// at once; while it is held (stopped with its first request in hand) the next four fill
    /// one batch, sealed when full (the delay is too long to seal it first) and queued (the
    /// worker holds one batch at a time), and their scores match the lone request's.
    @Test func batchedResultsMatchSingleOnes() async throws {
        var settings = try configuration(workers: 1, maxBatch: 4)
        settings.batchDelay = .seconds(120)
        settings.workerQueueDepth = 1
        let pool = try WorkerPool(configuration: settings)
        try await pool.start()
        let (single, receipt) = try await infer(pool, value: 0.5)
        #expect(receipt.batchSize == 1, "an idle worker does not wait for company")
        let worker = try #require(pool.status.workers.first?.pid)
        kill(worker, SIGSTOP)
        let results = try await withThrowingTaskGroup(of: ([Float], InferenceReceipt).self) { group in
            for _ in 0..<5 { group.addTask { try await infer(pool, value: 0.5) } }
            #expect(await eventually(within: 60) { pool.status.queuedBatches == 1 }, "the full batch waits behind the lone one")
            kill(worker, SIGCONT)
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.map(\.1.batchSize).sorted() == [1, 4, 4, 4, 4])
        for (scores, _) in results { #expect(zip(scores, single).allSatisfy { abs($0 - $1) <= 1e-4 }) }
        await pool.shutdown()
    }

    @Test("a worker killed mid-batch loses no request", arguments: [EngineKind.openvino, .onnxruntime])
    func aWorkerKilledMidBatchLosesNoRequest(engine: EngineKind) async throws {
        let pool = try WorkerPool(configuration: try configuration(model: "resnet50", engine: engine))
        try await pool.start()
        let victim = pool.status.workers[0].pid
        let results = try await withThrowingTaskGroup(of: InferenceReceipt.self) { group in
            for index in 0..<12 { group.addTask { try await infer(pool, value: Float(index) / 12).1 } }
            // Kill the worker once it is running a batch, so that batch must be retried.
            let running = await eventually(within: 30) { pool.status.workers.contains { $0.pid == victim && $0.busy } }
            try #require(running, "the worker never started a batch")
            kill(victim, SIGKILL)
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 12)
        #expect(results.contains { $0.attempts == 2 }, "the killed worker's batch was retried elsewhere")
        #expect(await eventually(within: 30) { pool.status.workers.filter(\.ready).count == 2 })
        #expect(!pool.status.workers.contains { $0.pid == victim })
        #expect(pool.status.restarts == 1)
        await pool.shutdown()
    }

    /// Real processes killed again and again, past the crash limit: each is replaced (the
    /// decisions, back-off and crash-loop refusals are `SlotSchedulerTests`'), the pool counts
    /// every restart, never gives up, and serves again.
    @Test func killedWorkersAreReplacedAgainAndAgainAndThePoolServes() async throws {
        var settings = try configuration(workers: 1)
        settings.crashLimit = 2
        let pool = try WorkerPool(configuration: settings)
        try await pool.start()
        var killed = Set<Int32>()
        for round in 1...3 {
            let pid = try #require(await readyWorker(pool, notIn: killed), "round \(round): a ready worker")
            killed.insert(pid)
            kill(pid, SIGKILL)
            #expect(await eventually(within: 30) { pool.status.restarts == round }, "round \(round): the exit is counted once")
        }
        #expect(await readyWorker(pool, notIn: killed) != nil, "the pool keeps replacing workers past its crash limit")
        #expect(await eventually(within: 30) { pool.status.health == .ready && pool.status.isLive })
        _ = try await infer(pool)
        await pool.shutdown()
    }

    /// Before the pool was ever ready, a worker that cannot build its engine stops the start at
    /// once with the engine's reason: every retry would fail the same way.
    @Test func aWorkerThatCannotLoadTheModelStopsTheStartWithItsReason() async throws {
        var settings = try configuration(workers: 2)
        settings.crashLimit = 5
        // A model file that is not a model: every worker fails while loading it.
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let broken = folder.appendingPathComponent("broken.onnx")
        try Data("not a model".utf8).write(to: broken)
        settings.model.file = broken
        let pool = try WorkerPool(configuration: settings)
        let error = await #expect(throws: PoolError.self) { try await pool.start() }
        guard case .startFailed(let reason)? = error else {
            Issue.record("expected startFailed, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("cannot read model") && reason.contains("broken.onnx"), "\(reason)")
        #expect(pool.status.restarts == 0, "no seat was retried: \(pool.status.restarts) restarts")
        await pool.shutdown()
        #expect(poolChildren().isEmpty)
    }

    @Test func aMalformedControlMessageGetsTheWorkerReplaced() async throws {
        let pool = try WorkerPool(configuration: try configuration(workers: 1))
        try await pool.start()
        let victim = pool.status.workers[0].pid
        try pool.sendRawControlMessage([UInt8](repeating: 0xAB, count: 40), toWorker: victim)
        #expect(await eventually(within: 30) { pool.status.workers.first.map { $0.pid != victim && $0.ready } ?? false })
        _ = try await infer(pool)
        await pool.shutdown()
    }

    @Test func recyclingAfterMaxRequestsIsGraceful() async throws {
        var settings = try configuration(workers: 1)
        settings.maxRequestsPerWorker = 3
        let pool = try WorkerPool(configuration: settings)
        try await pool.start()
        var workers = Set<Int32>()
        for _ in 0..<7 { workers.insert(try await infer(pool).1.workerPID) }
        #expect(workers.count >= 2)
        #expect(pool.status.restarts == 0, "a recycled worker is not a crash")
        await pool.shutdown()
    }

    @Test func stopLeavesNoProcessDescriptorOrMapping() async throws {
        #expect(poolChildren().isEmpty)
        let pool = try WorkerPool(configuration: try configuration())
        try await pool.start()
        #expect(poolChildren().count == 2)
        #expect(!poolResources(arena: arenaInode(pool)).isEmpty)
        // A batch in a stopped worker's hands stays in flight while the pool begins to stop.
        let workers = pool.status.workers.map(\.pid)
        workers.forEach { kill($0, SIGSTOP) }
        let inFlight = Task { try await infer(pool) }
        #expect(await eventually(within: 30) { pool.status.workers.contains(where: \.busy) })
        let stopping = Task { await pool.shutdown() }
        #expect(await eventually(within: 30) { pool.status.health == .stopping })
        workers.forEach { kill($0, SIGCONT) }
        _ = try await inFlight.value
        await stopping.value
        #expect(poolChildren().isEmpty)
        #expect(pool.status.health == .stopped)
        await #expect(throws: PoolError.stopped) { try await infer(pool) }
    }

    @Test func resourcesAreReleasedWithThePool() async throws {
        var arena: UInt64 = 0
        do {
            let pool = try WorkerPool(configuration: try configuration())
            try await pool.start()
            arena = arenaInode(pool)
            #expect(poolResources(arena: arena).count >= 3, "the arena's descriptor and mapping, and a pidfd per worker")
            await pool.shutdown()
        }
        #expect(poolResources(arena: arena).isEmpty, "\(poolResources(arena: arena))")
    }

    @Test func workersMapNoHTTPOrImageCodecs() async throws {
        let pool = try WorkerPool(configuration: try configuration(workers: 1))
        try await pool.start()
        let worker = pool.status.workers[0].pid
        let maps = try String(contentsOfFile: "/proc/\(worker)/maps", encoding: .utf8)
        let libraries = Set(maps.split(separator: "\n").compactMap { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(5).first }
            .map { URL(fileURLWithPath: String($0)).lastPathComponent })
        #expect(libraries.contains { $0.hasPrefix("libopenvino") }, "the worker runs the engine: \(libraries.sorted())")
        for absent in ["libopencv_imgcodecs", "libgdal", "libjpeg", "libpng", "libNIO"] {
            #expect(!libraries.contains { $0.hasPrefix(absent) }, "a worker maps \(absent)")
        }
        #expect(!maps.contains("/visionpool\n"), "a worker runs visionpool-worker, not the whole front binary")
        await pool.shutdown()
    }

    @Test func theWorkerProgramRefusesToRunByHand() throws {
        let result = try visionpool(["--configuration", "{}"], executable: TestPaths.workerExecutable)
        #expect(result.status == 64)
        #expect(result.stderr.contains("not a worker configuration"))
        let help = try visionpool(["--help"], executable: TestPaths.workerExecutable)
        #expect(help.status == 0 && help.stdout.contains("visionpool serve"))
    }

    @Test func workersDieWithTheFront() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        for index in 0..<400 {
            try FileManager.default.createSymbolicLink(
                at: folder.appendingPathComponent("\(index).jpg"), withDestinationURL: TestPaths.fixtures.appendingPathComponent("cat.jpg"))
        }
        let front = Process()
        front.executableURL = TestPaths.executable
        front.arguments = ["classify", "--json", "--workers", "2", "--threads", "1", "--model", "resnet50", folder.path]
        front.standardOutput = FileHandle.nullDevice
        front.standardError = FileHandle.nullDevice
        try front.run()
        let frontPID = front.processIdentifier
        var workers: [Int32] = []
        #expect(await eventually(within: 30) {
            workers = childrenOf(frontPID)
            return workers.count == 2
        }, "front's children: \(workers)")
        kill(frontPID, SIGKILL)
        front.waitUntilExit()
        // They get SIGKILL from the kernel as the front dies (PR_SET_PDEATHSIG); the wait is for that event, its cap only for a broken build.
        #expect(await eventually(within: 10) { !workers.contains(where: isRunning) }, "workers \(workers) outlived the front")
    }
}

/// A ready worker that is not one of `excluded`, once one appears.
func readyWorker(_ pool: WorkerPool, notIn excluded: Set<Int32>) async -> Int32? {
    var found: Int32?
    _ = await eventually(within: 30) {
        found = pool.status.workers.first { $0.ready && !excluded.contains($0.pid) }?.pid
        return found != nil
    }
    return found
}
