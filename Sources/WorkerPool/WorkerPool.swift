import CLinuxShims
import EngineInterface
import Foundation
import Glibc
import Logging
import SharedMemory
import Synchronization
import SystemPackage
import SystemSupport

/// A pre-started pool of worker processes that run the model on tensors in shared memory.
///
/// The decisions are `SlotScheduler`'s; this type carries them out, as gunicorn's arbiter
/// does: spawn, reap, time out, replace, stop. Events reach the scheduler under one lock (a
/// request's arrival, its sample written, its release; a worker's message or exit; time), and
/// what it decides is done outside the lock: system calls, continuation resumes, log lines.
/// Requests send their own batches when a worker is free, so nothing on the way in waits for
/// the supervisor thread; the supervisor polls the workers' sockets and pidfds and the clock.
public final class WorkerPool: @unchecked Sendable {
    public let configuration: PoolConfiguration
    public let arena: SharedArena
    public let cpuSets: [[Int]]
    /// The CPUs this process keeps to itself once started (`PoolConfiguration.frontCPUs`); empty: all.
    public let frontCPUSet: [Int]
    private let core: Mutex<Core>
    /// Written when the supervisor must look again before its sleep ends (a new deadline, a stop).
    private let wake: FileDescriptor
    /// The worker program, open since the pool was made: respawns run the same build.
    private let executable: FileDescriptor
    private let supervisorDone = DispatchSemaphore(value: 0)

    /// What the lock covers: the scheduler, the requests waiting on it, the workers' descriptors.
    struct Core {
        enum Lifecycle { case made, supervising, ended }

        var scheduler: SlotScheduler
        var lifecycle = Lifecycle.made
        var nextTicket: SlotScheduler.Ticket = 0
        var positionWaiters: [SlotScheduler.Ticket: CheckedContinuation<SlotScheduler.Position, Error>] = [:]
        var outcomeWaiters: [SlotScheduler.Ticket: CheckedContinuation<SlotScheduler.BatchReport, Error>] = [:]
        var startWaiters: [CheckedContinuation<Void, Error>] = []
        var startOutcome: Result<Void, PoolError>?
        var handles: [Int32: WorkerHandle] = [:]
    }

    /// A worker process's two descriptors: its control socket and a pidfd, readable once it exits.
    struct WorkerHandle {
        let pid: Int32
        let channel: ControlChannel
        let exitWatch: FileDescriptor
    }

    public init(configuration: PoolConfiguration) throws {
        guard (1...PoolConfiguration.maxBatchLimit).contains(configuration.maxBatch) else {
            throw PoolError.invalidConfiguration("the batch size must be between 1 and \(PoolConfiguration.maxBatchLimit)")
        }
        if let planned = configuration.cpuSets {
            guard planned.count == configuration.workers, planned.allSatisfy({ !$0.isEmpty }) else {
                throw PoolError.invalidConfiguration("\(planned.count) CPU sets were planned for \(configuration.workers) workers")
            }
            (cpuSets, frontCPUSet) = (planned, [])
        } else {
            let budget = CPUBudget.current()
            let (workerCPUs, frontCPUs) = try CPUPlacement.split(budget.mask, frontCPUs: configuration.frontCPUs)
            cpuSets = try CPUPlacement.plan(
                workers: configuration.workers, threads: configuration.threadsPerWorker, available: workerCPUs,
                oversubscribe: configuration.oversubscribe, quotaBound: budget.isQuotaBound)
            frontCPUSet = frontCPUs
        }
        self.configuration = configuration
        arena = try SharedArena(
            layout: SharedArena.Layout(
                slotCount: configuration.slotCount, maxBatch: configuration.maxBatch,
                inputFloatsPerSample: configuration.model.sampleInputCount, outputFloatsPerSample: configuration.model.outputCount))
        let program = CLinuxShims_open_executable(configuration.workerExecutable.path)
        guard program >= 0 else {
            throw PoolError.invalidConfiguration(
                "cannot open the worker program \(configuration.workerExecutable.path): \(Errno(rawValue: errno)); visionpool-worker must sit beside visionpool")
        }
        executable = FileDescriptor(rawValue: program)
        wake = FileDescriptor(rawValue: try retryingOnInterrupt { CLinuxShims_eventfd() })
        core = Mutex(Core(scheduler: SlotScheduler(configuration.schedulerSettings(cpuSets: cpuSets), now: monotonicNanoseconds())))
    }

    deinit {
        try? wake.close()
        try? executable.close()
    }

    // MARK: Lifecycle

    /// Spawns every worker and returns once all have compiled and warmed their engine; when
    /// that fails, the workers that did start are stopped again before the error is thrown.
    public func start() async throws {
        do {
            if !frontCPUSet.isEmpty {
                do {
                    try pinThisProcess(to: frontCPUSet)
                } catch {
                    throw PoolError.invalidConfiguration("cannot keep CPUs \(frontCPUSet) for the front: \(error)")
                }
            }
            // The thread holds the pool only while supervising: once it signals, the pool's
            // last owner may free it at once.
            let done = supervisorDone
            let thread = Thread { [weak self] in
                self?.superviseUntilStopped()
                done.signal()
            }
            thread.name = "visionpool-supervisor"
            core.withLock { $0.lifecycle = .supervising }
            thread.start()
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                let outcome = core.withLock { core in
                    if core.startOutcome == nil { core.startWaiters.append(continuation) }
                    return core.startOutcome
                }
                if let outcome { continuation.resume(with: outcome.mapError { $0 }) }
            }
        } catch {
            await shutdown()
            throw error
        }
    }

    /// Stops taking requests, lets in-flight ones finish for up to `gracePeriod`, stops the
    /// workers and reaps them; past the grace period the requests still running fail and the
    /// workers are killed. Nothing is left behind: no child process, descriptor or mapping.
    public func shutdown(gracePeriod: Duration = .seconds(30)) async {
        let supervising = core.withLock { core in
            if core.lifecycle == .made { core.lifecycle = .ended }
            return core.lifecycle == .supervising
        }
        post([.stop(deadline: monotonicNanoseconds() + gracePeriod.nanoseconds)])
        guard supervising else { return }
        let done = supervisorDone
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                done.wait()
                done.signal()  // for any other caller of shutdown()
                continuation.resume()
            }
        }
    }

    /// Whether requests can be served now, without building a whole `status`: asked on every request.
    public var canServe: Bool { core.withLock { $0.scheduler.canServe } }

    public var status: PoolStatus {
        core.withLock { core in
            let scheduler = core.scheduler
            return PoolStatus(
                health: scheduler.health(at: monotonicNanoseconds()),
                workers: scheduler.workers.values.sorted { $0.seat < $1.seat }.map {
                    PoolStatus.Worker(
                        pid: $0.pid, seat: $0.seat, cpus: cpuSets[$0.seat], ready: $0.phase == .ready, engine: $0.engine, batchesServed: $0.served,
                        busy: $0.busySince != nil)
                },
                canServe: scheduler.canServe, restarts: scheduler.restarts, queuedBatches: scheduler.queuedBatches, executions: scheduler.executions)
        }
    }

    // MARK: Requests

    /// Runs one sample through the pool: `prepare` writes its tensor straight into a slot,
    /// `consume` reads its scores from the slot before the slot is reused. A request cancelled
    /// while it waits in line for a slot leaves it; once its sample is written it waits for its batch.
    public func infer<Result>(
        prepare: (UnsafeMutableBufferPointer<Float>) throws -> Void,
        consume: (UnsafeBufferPointer<Float>, InferenceReceipt) throws -> Result
    ) async throws -> Result {
        let waitStart = ContinuousClock.now
        let ticket = core.withLock { core in
            core.nextTicket += 1
            return core.nextTicket
        }
        let position = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<SlotScheduler.Position, Error>) in
                perform(core.withLock { core in
                    guard !Task.isCancelled else { return [.resumePosition(continuation, .failure(CancellationError()))] }
                    core.positionWaiters[ticket] = continuation
                    return core.handle([.arrive(ticket)])
                })
            }
        } onCancel: {
            post([.leaveLine(ticket)])
        }
        let slotWait = ContinuousClock.now - waitStart
        do {
            try prepare(arena.input(slot: position.slot, sample: position.index))
        } catch {
            post([.writeFailed(ticket)])
            throw error
        }
        defer { post([.released(ticket)]) }
        let report = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<SlotScheduler.BatchReport, Error>) in
            perform(core.withLock { core in
                core.outcomeWaiters[ticket] = continuation
                return core.handle([.written(ticket)])
            })
        }
        return try consume(arena.output(slot: position.slot, sample: position.index), receipt(report, slotWait: slotWait))
    }

    private func receipt(_ report: SlotScheduler.BatchReport, slotWait: Duration) -> InferenceReceipt {
        let seconds = { (from: UInt64, to: UInt64) in to > from ? Double(to - from) / 1e9 : 0 }
        let offsets = arena.layout.tensorOffsets(slot: report.slot)
        return InferenceReceipt(
            workerPID: report.worker, slot: report.slot, batchSize: report.size, reportedInputOffset: report.reply.inputOffset,
            reportedOutputOffset: report.reply.outputOffset, slotInputOffset: offsets.input, slotOutputOffset: offsets.output,
            inferenceSeconds: Double(report.reply.inferenceNanoseconds) / 1e9, attempts: report.attempts, slotWaitSeconds: slotWait.seconds,
            queueSeconds: seconds(report.queuedAt, report.dispatchedAt), toWorkerSeconds: seconds(report.dispatchedAt, report.reply.receivedAt),
            fromWorkerSeconds: seconds(report.reply.repliedAt, report.completedAt), completedAt: report.completedAt)
    }

    /// Sends raw bytes to the worker `pid` on its control socket: tests use it to prove that
    /// a malformed message makes the worker exit and the pool replace it.
    func sendRawControlMessage(_ bytes: [UInt8], toWorker pid: Int32) throws {
        try core.withLock { $0.handles[pid]?.channel }?.sendRaw(bytes)
    }

    // MARK: The arbiter

    /// One thread, one poll loop over the workers' control sockets and pidfds and the wake
    /// eventfd: read what workers say, reap the ones that exited, let time pass, and carry out
    /// what the scheduler decides, until it says the pool has stopped.
    private func superviseUntilStopped() {
        post([.tick])
        while core.withLock({ $0.scheduler.phase != .stopped }) {
            let (handles, timeout) = core.withLock { core in
                (Array(core.handles.values), Self.pollTimeout(until: core.scheduler.nextDeadline(), now: monotonicNanoseconds()))
            }
            var descriptors = [pollfd(fd: wake.rawValue, events: Int16(POLLIN), revents: 0)]
            for handle in handles {
                descriptors.append(pollfd(fd: handle.channel.descriptor.rawValue, events: Int16(POLLIN), revents: 0))
                descriptors.append(pollfd(fd: handle.exitWatch.rawValue, events: Int16(POLLIN), revents: 0))
            }
            _ = poll(&descriptors, nfds_t(descriptors.count), timeout)
            var counter: UInt64 = 0
            _ = read(wake.rawValue, &counter, 8)
            var events: [SlotScheduler.Event] = []
            var exited: [WorkerHandle] = []
            for (index, handle) in handles.enumerated() {
                let (message, exit) = (descriptors[1 + 2 * index].revents, descriptors[2 + 2 * index].revents)
                // Replies a worker sent before it died still count: its messages are read first.
                if message != 0 || exit != 0 { events += Self.messages(from: handle) }
                if exit != 0, let status = Self.exitStatus(handle) {
                    events.append(.exited(pid: handle.pid, status: status))
                    exited.append(handle)
                }
            }
            post(events + [.tick])
            // Reaped only once the scheduler has let go of them: until then their pids stay theirs.
            for handle in exited { reap(handle) }
        }
    }

    /// Every message waiting on a worker's socket, as scheduler events.
    private static func messages(from handle: WorkerHandle) -> [SlotScheduler.Event] {
        var events: [SlotScheduler.Event] = []
        while true {
            let message: ControlMessage
            do {
                guard let received = try handle.channel.receive() else { return events }
                message = received
            } catch {
                return events + [.misbehaved(pid: handle.pid, reason: "\(error)")]
            }
            switch message.kind {
            case .ready:
                events.append(.ready(pid: handle.pid, engine: message.engineDescription, warmUp: .nanoseconds(Int64(clamping: message.inferenceNanoseconds))))
            case .done:
                events.append(.replied(pid: handle.pid, slot: message.slot, sequence: message.sequence, result: .success(SlotScheduler.WorkerReply(
                    inferenceNanoseconds: message.inferenceNanoseconds, inputOffset: message.inputOffset, outputOffset: message.outputOffset,
                    receivedAt: message.receivedAt, repliedAt: message.repliedAt))))
            case .error:
                events.append(.replied(pid: handle.pid, slot: message.slot, sequence: message.sequence, result: .failure(.init(message.text))))
            case .startFailed:
                events.append(.startFailed(pid: handle.pid, reason: message.text))
            case .run, .stop:
                return events + [.misbehaved(pid: handle.pid, reason: "it sent a \(message.kind) message, which only the front sends")]
            }
        }
    }

    /// How an exited worker ended ("exit status 2", "signal 9"), read from its pidfd without
    /// reaping it (`CLinuxShims_pidfd_exit`); nil while it still runs.
    private static func exitStatus(_ handle: WorkerHandle) -> String? {
        var code: Int32 = 0, signal: Int32 = 0
        guard CLinuxShims_pidfd_exit(handle.exitWatch.rawValue, &code, &signal) == 0 else { return nil }
        return signal == 0 ? "exit status \(code)" : "signal \(signal)"
    }

    /// Waits for an exited worker (this does not block) and closes its descriptors.
    private func reap(_ handle: WorkerHandle) {
        var status: Int32 = 0
        _ = waitpid(handle.pid, &status, 0)
        core.withLock { _ = $0.handles.removeValue(forKey: handle.pid) }
        try? handle.channel.descriptor.close()
        try? handle.exitWatch.close()
    }

    /// Milliseconds until `deadline`, at most a second (so a clock that moved is noticed).
    static func pollTimeout(until deadline: Nanoseconds?, now: Nanoseconds) -> Int32 {
        guard let deadline else { return 1000 }
        return deadline <= now ? 0 : Int32(min(1000, (deadline - now + 999_999) / 1_000_000))
    }

    // MARK: Carrying out the scheduler's decisions

    /// What one decision comes to once the lock has found its continuation or socket.
    enum Effect {
        case resumePosition(CheckedContinuation<SlotScheduler.Position, Error>, Result<SlotScheduler.Position, Error>)
        case resumeOutcome(CheckedContinuation<SlotScheduler.BatchReport, Error>, Result<SlotScheduler.BatchReport, Error>)
        case resumeStart([CheckedContinuation<Void, Error>], Result<Void, Error>)
        case send(ControlMessage, ControlChannel, to: Int32)
        case kill(Int32)
        case spawn(seat: Int)
        case log(Logger.Level, String)
        case wake
    }

    /// Hands `events` to the scheduler under the lock and carries out what it decides outside it.
    private func post(_ events: [SlotScheduler.Event]) {
        guard !events.isEmpty else { return }
        perform(core.withLock { $0.handle(events) })
    }

    private func perform(_ effects: [Effect]) {
        for effect in effects {
            switch effect {
            case .resumePosition(let continuation, let result): continuation.resume(with: result)
            case .resumeOutcome(let continuation, let result): continuation.resume(with: result)
            case .resumeStart(let continuations, let result): continuations.forEach { $0.resume(with: result) }
            case .send(let message, let channel, let pid):
                // Non-blocking: the socket holds far more than the few messages a worker may have pending.
                do {
                    try channel.send(message)
                } catch {
                    post([.misbehaved(pid: pid, reason: "its control socket failed: \(error)")])
                }
            case .kill(let pid): kill(pid, SIGKILL)
            case .spawn(let seat): spawnWorker(seat: seat)
            case .log(let level, let text): configuration.logger.log(level: level, "\(text)")
            case .wake:
                var one: UInt64 = 1
                _ = write(wake.rawValue, &one, 8)
            }
        }
    }

    private func spawnWorker(seat: Int) {
        do {
            let handle = try spawn(seat: seat)
            core.withLock { $0.handles[handle.pid] = handle }
            post([.spawned(seat: seat, pid: handle.pid)])
        } catch {
            post([.spawnFailed(seat: seat, reason: "\(error)")])
        }
    }

    /// The front's environment with Swift's crash backtracer off: a worker that crashes must
    /// die at once, so its batches are retried now rather than after seconds of symbolication.
    static let workerEnvironment: [String] = ProcessInfo.processInfo.environment
        .filter { $0.key != "SWIFT_BACKTRACE" }.map { "\($0.key)=\($0.value)" } + ["SWIFT_BACKTRACE=enable=no"]

    /// `posix_spawn` of the worker program with the arena on descriptor 3 and one end of a new
    /// control socket on 4, and a pidfd to watch its exit.
    private func spawn(seat: Int) throws -> WorkerHandle {
        var sockets: [Int32] = [-1, -1]
        try retryingOnInterrupt { CLinuxShims_socketpair_seqpacket(&sockets) }
        let ours = FileDescriptor(rawValue: sockets[0]), theirs = FileDescriptor(rawValue: sockets[1])
        defer { try? theirs.close() }
        _ = CLinuxShims_set_nonblocking(ours.rawValue)
        var worker = WorkerConfiguration(
            model: configuration.model, engine: configuration.engine(seat: seat), slotCount: arena.layout.slotCount, maxBatch: arena.layout.maxBatch,
            cpus: cpuSets[seat], parentPID: getpid())
        worker.lockSlots = configuration.lockSlots
        worker.countKernels = configuration.countKernels
        let arguments = [configuration.workerExecutable.path, "--configuration", worker.encoded()]
        var pid: pid_t = 0
        let result = withCStrings(arguments) { argv in
            withCStrings(Self.workerEnvironment) { envp in
                CLinuxShims_spawn_worker(executable.rawValue, argv, envp, arena.descriptor.rawValue, theirs.rawValue, &pid)
            }
        }
        guard result == 0 else {
            try? ours.close()
            throw Errno(rawValue: result)
        }
        do {
            let exitWatch = try retryingOnInterrupt { CLinuxShims_pidfd_open(pid) }
            return WorkerHandle(pid: pid, channel: ControlChannel(descriptor: ours, layout: arena.layout), exitWatch: FileDescriptor(rawValue: exitWatch))
        } catch {
            try? ours.close()
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw error
        }
    }
}

extension WorkerPool.Core {
    /// The scheduler's decisions for `events`, each turned into what carries it out.
    mutating func handle(_ events: [SlotScheduler.Event]) -> [WorkerPool.Effect] {
        events.flatMap { scheduler.handle($0, at: monotonicNanoseconds()) }.flatMap { effects(of: $0) }
    }

    private mutating func effects(of action: SlotScheduler.Action) -> [WorkerPool.Effect] {
        switch action {
        case .grant(let ticket, let position):
            return positionWaiters.removeValue(forKey: ticket).map { [.resumePosition($0, .success(position))] } ?? []
        case .refuse(let ticket, let error):
            return positionWaiters.removeValue(forKey: ticket).map { [.resumePosition($0, .failure(error))] } ?? []
        case .leave(let ticket):
            return positionWaiters.removeValue(forKey: ticket).map { [.resumePosition($0, .failure(CancellationError()))] } ?? []
        case .complete(let tickets, let outcome):
            return tickets.compactMap { ticket in outcomeWaiters.removeValue(forKey: ticket).map { .resumeOutcome($0, outcome.mapError { $0 }) } }
        case .run(let pid, let slot, let batch, let sequence):
            guard let handle = handles[pid] else { return [] }
            return [.send(ControlMessage(kind: .run, slot: slot, batch: batch, sequence: sequence), handle.channel, to: pid)]
        case .stopWorker(let pid):
            return handles[pid].map { [.send(ControlMessage(kind: .stop), $0.channel, to: pid)] } ?? []
        case .kill(let pid): return [.kill(pid)]
        case .spawn(let seat): return [.spawn(seat: seat)]
        case .log(let level, let text): return [.log(level, text)]
        case .wake, .stopped: return [.wake]
        case .started:
            startOutcome = .success(())
            defer { startWaiters = [] }
            return [.resumeStart(startWaiters, .success(()))]
        case .startFailed(let error):
            startOutcome = .failure(error)
            defer { startWaiters = [] }
            return [.resumeStart(startWaiters, .failure(error))]
        }
    }
}

extension PoolConfiguration {
    /// The scheduler's settings for this pool's shape.
    func schedulerSettings(cpuSets: [[Int]]) -> SlotScheduler.Settings {
        SlotScheduler.Settings(
            slots: slotCount, seats: workers, policy: DynamicBatching(maxBatch: maxBatch, delay: batchDelay), queueDepth: queueDepth,
            maxWaiting: maxWaitingRequests, crashLimit: crashLimit, liveness: livenessTimeout, workerTimeout: workerTimeout,
            recycleAfter: maxRequestsPerWorker, cpuSets: cpuSets, model: model.file.lastPathComponent)
    }
}

/// Calls `body` with a NULL-terminated `char *[]` of `strings`.
private func withCStrings<Result>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> Result) -> Result {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { pointers.forEach { free($0) } }
    return body(pointers)
}
