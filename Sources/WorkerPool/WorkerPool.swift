import SystemSupport
import CLinuxShims
import Foundation
import Glibc
import EngineInterface
import Logging
import SharedMemory
import Synchronization
import SystemPackage

/// What a request learns about the batch that carried it.
public struct InferenceReceipt: Sendable, Equatable {
    public var workerPID: Int32
    public var slot: Int
    public var batchSize: Int
    /// Where the worker's engine says it read and wrote, as offsets into the arena, next to
    /// where this slot's tensors are: equal offsets mean the tensors were used in place.
    public var reportedInputOffset: Int
    public var reportedOutputOffset: Int
    public var slotInputOffset: Int
    public var slotOutputOffset: Int
    public var inferenceSeconds: Double
    /// How many workers this batch was sent to (2 after a crash and retry).
    public var attempts: Int
    /// The hops of the batch: waiting in the front for a free slot (back-pressure, before the
    /// sample was written), then for a worker, the run message reaching the worker, and its
    /// reply reaching the front.
    public var slotWaitSeconds: Double = 0
    public var queueSeconds: Double
    public var toWorkerSeconds: Double
    public var fromWorkerSeconds: Double
    /// CLOCK_MONOTONIC (`monotonicNanoseconds()`) when the front had the reply.
    public var completedAt: UInt64
}

/// A snapshot of the pool for status pages and tests.
public struct PoolStatus: Sendable {
    public enum Health: Equatable, Sendable, CustomStringConvertible {
        /// Workers are warming up for the first time.
        case starting
        case ready
        /// Workers crashed and are being replaced (with back-off); the ready ones serve.
        case degraded(String)
        /// The pool cannot recover by itself: it never started, or no worker has been ready
        /// for `livenessTimeout`. Liveness probes fail, so an orchestrator restarts the process.
        case failing(String)
        case stopping, stopped

        public var description: String {
            switch self {
            case .starting: "starting"
            case .ready: "ready"
            case .degraded(let reason): "degraded: \(reason)"
            case .failing(let reason): "failing: \(reason)"
            case .stopping: "stopping"
            case .stopped: "stopped"
            }
        }
    }

    public struct Worker: Sendable {
        public var pid: Int32
        public var seat: Int
        public var cpus: [Int]
        public var ready: Bool
        /// What the worker's engine reported running as when it became ready.
        public var engine: EngineDescription?
        public var batchesServed: Int
        /// Running a batch now.
        public var busy: Bool
    }

    public var health: Health
    public var workers: [Worker]
    /// Requests can be served now: some worker is ready and the pool takes requests.
    public var canServe: Bool
    /// False only when the pool cannot recover by itself.
    public var isLive: Bool {
        if case .failing = health { return false }
        return true
    }
    /// Workers replaced after a crash.
    public var restarts: Int
    public var queuedBatches: Int

    /// The precisions the ready workers run at, e.g. "int8+bf16"; "?" before any is ready.
    public var precision: String {
        let reported = Set(workers.compactMap { $0.ready ? $0.engine?.precisionOnDevice : nil })
        return reported.isEmpty ? "?" : reported.sorted().joined(separator: "/")
    }

    /// Why the ready workers run below their engine's own choice of precision, if they do.
    public var precisionFallback: PrecisionFallback? {
        workers.lazy.compactMap { $0.ready ? $0.engine?.fallback : nil }.first
    }
}

/// A pre-started pool of worker processes that run the model on tensors in shared memory.
///
/// Requests reserve a sample position in a slot, write their tensor there (`prepare`), and
/// wait; the supervisor thread packs positions into batches, hands each to the least-loaded
/// ready worker over its control socket, and wakes the requests when the scores are in the
/// slot (`consume`). Workers that die are noticed at once (pidfd, socket EOF), their batch is
/// retried once elsewhere, and they are replaced with back-off; a worker that runs one batch
/// past its timeout is killed and handled the same way.
public final class WorkerPool: @unchecked Sendable {
    public let configuration: PoolConfiguration
    public let arena: SharedArena
    public let cpuSets: [[Int]]
    /// The CPUs this process keeps to itself once started (`PoolConfiguration.frontCPUs`); empty: all.
    public let frontCPUSet: [Int]
    private let state: Mutex<State>
    private let wake: FileDescriptor
    /// The worker program, open since the pool was made: respawns run the same build.
    private let executable: FileDescriptor
    private let supervisorDone = DispatchSemaphore(value: 0)
    private var logger: Logger { configuration.logger }

    public init(configuration: PoolConfiguration) throws {
        guard (1...PoolConfiguration.maxBatchLimit).contains(configuration.maxBatch) else {
            throw PoolError.invalidConfiguration("the batch size must be between 1 and \(PoolConfiguration.maxBatchLimit)")
        }
        let budget = CPUBudget.current()
        let (workerCPUs, frontCPUs) = try CPUPlacement.split(budget.mask, frontCPUs: configuration.frontCPUs)
        cpuSets = try CPUPlacement.plan(
            workers: configuration.workers, threads: configuration.threadsPerWorker, available: workerCPUs,
            oversubscribe: configuration.oversubscribe, quotaBound: budget.isQuotaBound)
        frontCPUSet = frontCPUs
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
        state = Mutex(State(configuration))
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
            try await spawnAndWaitUntilReady()
        } catch {
            await shutdown()
            throw error
        }
    }

    private func spawnAndWaitUntilReady() async throws {
        // The thread holds the pool only while supervising: once it signals, the pool's last
        // owner may free it at once.
        let done = supervisorDone
        let thread = Thread { [weak self] in
            self?.superviseUntilStopped()
            done.signal()
        }
        thread.name = "visionpool-supervisor"
        state.withLock { state in
            state.supervising = true
            for seat in 0..<configuration.workers { state.respawnAt[seat] = .now }
        }
        thread.start()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            state.withLock { state in
                if state.stopRequested {
                    continuation.resume(throwing: PoolError.stopped)
                } else if let failure = state.startFailure {
                    continuation.resume(throwing: PoolError.startFailed(failure))
                } else if state.started {
                    continuation.resume()
                } else {
                    state.startWaiters.append(continuation)
                }
            }
        }
    }

    /// Stops taking requests, lets in-flight ones finish for up to `gracePeriod`, stops the
    /// workers and reaps them; past the grace period the requests still running fail and the
    /// workers are killed. Nothing is left behind: no child process, descriptor or mapping.
    public func shutdown(gracePeriod: Duration = .seconds(30)) async {
        let started = state.withLock { state -> Bool in
            state.beginStopping(deadline: .now + gracePeriod)
            return state.supervising
        }
        signalSupervisor()
        guard started else {
            state.withLock { $0.stopped = true }
            return
        }
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
    public var canServe: Bool { state.withLock { $0.canServe } }

    public var status: PoolStatus {
        state.withLock { state in
            PoolStatus(
                health: state.health,
                workers: state.workers.values.sorted { $0.seat < $1.seat }.map {
                    PoolStatus.Worker(pid: $0.pid, seat: $0.seat, cpus: cpuSets[$0.seat], ready: $0.ready, engine: $0.engine, batchesServed: $0.served,
                        busy: $0.busySince != nil)
                },
                canServe: state.canServe, restarts: state.restarts, queuedBatches: state.dispatchQueue.count)
        }
    }

    // MARK: Requests

    /// Runs one sample through the pool: `prepare` writes its tensor straight into a slot,
    /// `consume` reads its scores from the slot before the slot is reused.
    public func infer<Result>(
        prepare: (UnsafeMutableBufferPointer<Float>) throws -> Void,
        consume: (UnsafeBufferPointer<Float>, InferenceReceipt) throws -> Result
    ) async throws -> Result {
        let waitStart = ContinuousClock.now
        let (slot, index) = try await reserve()
        let slotWait = ContinuousClock.now - waitStart
        do {
            try prepare(arena.input(slot: slot, sample: index))
        } catch {
            state.withLock { state in
                state.prepared(slot: slot, index: index, waiter: nil)
                dispatch(in: &state)
            }
            throw error
        }
        defer { release(slot) }
        // The request's own thread sends the batch when a worker is free: no supervisor wake-up
        // on the way in, only on the way back.
        var receipt = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<InferenceReceipt, Error>) in
            state.withLock { state in
                state.prepared(slot: slot, index: index, waiter: continuation)
                dispatch(in: &state)
            }
        }
        receipt.slotWaitSeconds = slotWait.seconds
        return try consume(arena.output(slot: slot, sample: index), receipt)
    }

    /// A position in a filling batch, waiting in line for a free slot when all are taken
    /// (back-pressure). The line is first come first served; a request cancelled while it
    /// waits (its deadline passed, its client left) leaves it without ever taking a slot.
    private func reserve() async throws -> (slot: Int, index: Int) {
        let ticket = state.withLock { state in
            state.nextTicket += 1
            return state.nextTicket
        }
        let position = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<(slot: Int, index: Int), Error>) in
                state.withLock { state in
                    do {
                        if Task.isCancelled { throw CancellationError() }
                        if let position = try state.reserve() {
                            continuation.resume(returning: position)
                        } else if state.slotWaiters.count >= configuration.maxWaitingRequests {
                            throw PoolError.overloaded("\(state.slotWaiters.count) requests are already waiting for a slot")
                        } else {
                            state.slotWaiters.append((ticket, continuation))
                        }
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
            }
        } onCancel: {
            state.withLock { state in
                guard let index = state.slotWaiters.firstIndex(where: { $0.ticket == ticket }) else { return }
                state.slotWaiters.remove(at: index).continuation.resume(throwing: CancellationError())
            }
        }
        // A partly filled batch has a deadline the supervisor must wake up for.
        if configuration.maxBatch > 1 { signalSupervisor() }
        return position
    }

    /// Gives back a request's position; a draining pool's supervisor checks whether it is done.
    private func release(_ slot: Int) {
        let stopping = state.withLock { state in
            state.release(slot: slot)
            return state.stopRequested
        }
        if stopping { signalSupervisor() }
    }

    /// Sends raw bytes to the worker `pid` on its control socket: tests use it to prove that
    /// a malformed message makes the worker exit and the pool replace it.
    func sendRawControlMessage(_ bytes: [UInt8], toWorker pid: Int32) throws {
        let channel = state.withLock { $0.workers[pid]?.channel }
        try channel?.sendRaw(bytes)
    }

    // MARK: Supervision

    /// The arbiter: watch, reap, time out, dispatch, replace, stop. One thread, one poll loop;
    /// the lock is held only for bookkeeping, never while spawning or logging.
    private func superviseUntilStopped() {
        while true {
            let (watched, timeout) = state.withLock { $0.pollSet(wake: wake.rawValue) }
            var descriptors = watched.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            _ = poll(&descriptors, nfds_t(descriptors.count), timeout)
            var counter: UInt64 = 0
            _ = read(wake.rawValue, &counter, 8)
            let (due, drained, logs) = state.withLock { state -> ([Int], [State.Worker]?, [(level: Logger.Level, text: String)]) in
                for (index, entry) in watched.enumerated() where descriptors[index].revents != 0 {
                    switch entry.role {
                    case .wake: break
                    case .control(let pid): _ = receiveMessage(from: pid, in: &state)
                    case .exit(let pid): reap(pid, in: &state)
                    }
                }
                timeOutStuckWorkers(in: &state)
                state.sealExpiredBatch()
                dispatch(in: &state)
                recycleWorkers(in: &state)
                state.failQueuedWithoutCapacity()
                let due = dueSeats(in: &state)
                var drained: [State.Worker]?
                if state.stopRequested {
                    if let deadline = state.stopDeadline, deadline <= .now, !state.batches.isEmpty {
                        state.log(.warning, "the graceful stop ran out of time: \(state.batches.count) batches cut off")
                        state.abandonBatches()
                    }
                    if state.batches.allSatisfy({ $0.value.outcome != nil }) { drained = Array(state.workers.values) }
                }
                defer { state.pendingLogs = [] }
                return (due, drained, state.pendingLogs)
            }
            for entry in logs { logger.log(level: entry.level, "\(entry.text)") }
            if let drained {
                stop(drained)
                return
            }
            for seat in due { respawn(seat) }
        }
    }

    /// Handles one message from worker `pid`; false when there was none (EOF, or an error).
    private func receiveMessage(from pid: Int32, in state: inout State) -> Bool {
        guard let worker = state.workers[pid] else { return false }
        let message: ControlMessage?
        do {
            message = try worker.channel.receive()
        } catch {
            condemn(pid, because: "\(error)", in: &state)
            return false
        }
        guard let message else { return false }  // EOF: the pidfd reports the exit.
        switch message.kind {
        case .ready:
            guard let engine = message.engineDescription else {
                condemn(pid, because: "its ready message did not describe its engine", in: &state)
                return false
            }
            state.workers[pid]?.ready = true
            state.workers[pid]?.engine = engine
            if let fallback = engine.fallback, state.reportedFallback != fallback {
                state.reportedFallback = fallback
                state.log(.warning, "worker \(pid) runs \(configuration.model.file.lastPathComponent) at \(engine.precision): \(fallback)")
            }
            state.workers[pid]?.timeout = configuration.workerTimeout(warmUp: .nanoseconds(Int64(clamping: message.inferenceNanoseconds)))
            state.consecutiveCrashes[worker.seat] = nil
            state.noteReadiness()
            state.becomeReadyIfAllSeated(seats: configuration.workers)
        case .done, .error:
            guard let slot = worker.inFlight.first, slot == message.slot, state.batches[slot]?.sequence == message.sequence else {
                condemn(pid, because: "it answered for slot \(message.slot) out of turn", in: &state)
                return false
            }
            state.workers[pid]?.inFlight.removeFirst()
            state.workers[pid]?.busySince = worker.inFlight.count > 1 ? .now : nil
            state.workers[pid]?.served += 1
            if message.kind == .error {
                state.finish(slot: slot, with: .failure(PoolError.inferenceFailed(message.text)))
            } else {
                let now = monotonicNanoseconds()
                let offsets = arena.layout.tensorOffsets(slot: slot)
                let batch = state.batches[slot]!
                let seconds = { (from: UInt64, to: UInt64) in to > from ? Double(to - from) / 1e9 : 0 }
                state.finish(slot: slot, with: .success(InferenceReceipt(
                    workerPID: pid, slot: slot, batchSize: batch.reserved,
                    reportedInputOffset: message.inputOffset, reportedOutputOffset: message.outputOffset,
                    slotInputOffset: offsets.input, slotOutputOffset: offsets.output,
                    inferenceSeconds: Double(message.inferenceNanoseconds) / 1e9, attempts: batch.attempts,
                    queueSeconds: seconds(batch.queuedAt, batch.dispatchedAt), toWorkerSeconds: seconds(batch.dispatchedAt, message.receivedAt),
                    fromWorkerSeconds: seconds(message.repliedAt, now), completedAt: now)))
            }
        case .startFailed:
            // Before the pool was ever ready, a worker that cannot build its engine means the
            // model, the options or the machine are wrong: every retry would fail the same way.
            state.workers[pid]?.startFailure = message.text
            if !state.started { state.failStart(message.text) }
        case .run, .stop:
            condemn(pid, because: "it sent a \(message.kind) message, which only the front sends", in: &state)
            return false
        }
        return true
    }

    /// Kills a worker that cannot be trusted; it gets no more batches, and its exit is handled as a crash.
    private func condemn(_ pid: Int32, because reason: String, in state: inout State) {
        state.log(.error, "worker \(pid): \(reason); replacing it")
        state.workers[pid]?.ready = false
        state.noteReadiness()
        kill(pid, SIGKILL)
    }

    /// The watchdog: a worker whose batch has run past its timeout (a hung engine, a stopped
    /// process) is killed; its batch is retried elsewhere once and its seat is replaced.
    private func timeOutStuckWorkers(in state: inout State) {
        let now = ContinuousClock.now
        for worker in state.workers.values where !worker.timedOut {
            guard let since = worker.busySince, now - since > worker.timeout else { continue }
            state.workers[worker.pid]?.timedOut = true
            condemn(worker.pid, because: "its batch has run for more than its \(worker.timeout) worker timeout", in: &state)
        }
    }

    /// A worker exited: close its descriptors, retry its batches elsewhere, schedule its seat.
    private func reap(_ pid: Int32, in state: inout State) {
        // Replies it sent before dying still count; its end is closed, so this never blocks.
        while receiveMessage(from: pid, in: &state) {}
        guard let worker = state.workers.removeValue(forKey: pid) else { return }
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        try? worker.channel.descriptor.close()
        try? worker.exitWatch.close()
        state.noteReadiness()
        for slot in worker.inFlight {
            if state.batches[slot]!.attempts < 2 {
                state.dispatchQueue.insert(slot, at: 0)
            } else if worker.timedOut {
                state.finish(slot: slot, with: .failure(PoolError.timedOut("the batch outran the worker timeout on two workers")))
            } else {
                state.finish(slot: slot, with: .failure(PoolError.inferenceFailed("the batch crashed two workers")))
            }
        }
        // A failed start says why in its error; its workers' exits need no log lines of their own.
        guard state.needsWorkers, state.startFailure == nil else { return }
        if worker.stopping {
            state.respawnAt[worker.seat] = .now
            return
        }
        let reason = worker.timedOut ? "killed after its worker timeout" : worker.startFailure.map { "could not start: \($0)" } ?? describe(status)
        state.log(.error, "worker \(pid) on CPUs \(cpuSets[worker.seat]) exited unexpectedly (\(reason))")
        seatFailed(worker.seat, because: "worker \(pid) \(reason)", in: &state)
    }

    /// A seat lost its worker, or could not start one: retry with capped back-off, for ever
    /// once the pool has been ready; a crash loop before that fails the start.
    private func seatFailed(_ seat: Int, because reason: String, in state: inout State) {
        let crashes = state.consecutiveCrashes[seat, default: 0] + 1
        state.consecutiveCrashes[seat] = crashes
        state.lastCrash = reason
        state.restarts += 1
        if !state.started, crashes >= configuration.crashLimit {
            state.failStart("\(crashes) workers in a row failed to start; last: \(reason)")
            return
        }
        state.respawnAt[seat] = .now + .milliseconds(min(5000, 100 << min(crashes - 1, 6)))
    }

    /// Hands queued batches to the ready workers with the fewest batches in hand.
    private func dispatch(in state: inout State) {
        while let slot = state.dispatchQueue.first {
            let candidates = state.workers.values.filter { $0.ready && !$0.stopping && $0.inFlight.count < configuration.queueDepth }
            guard let worker = candidates.min(by: { ($0.inFlight.count, $0.served) < ($1.inFlight.count, $1.served) }) else { return }
            state.dispatchQueue.removeFirst()
            state.batches[slot]!.attempts += 1
            state.batches[slot]!.dispatchedAt = monotonicNanoseconds()
            let batch = state.batches[slot]!
            do {
                // Non-blocking: the socket holds far more than the two messages a worker may have pending.
                try worker.channel.send(ControlMessage(kind: .run, slot: slot, batch: batch.reserved, sequence: batch.sequence))
                state.workers[worker.pid]!.inFlight.append(slot)
                if worker.inFlight.isEmpty { state.workers[worker.pid]!.busySince = .now }
            } catch {
                state.batches[slot]!.attempts -= 1
                state.dispatchQueue.insert(slot, at: 0)
                condemn(worker.pid, because: "its control socket failed: \(error)", in: &state)
                continue
            }
        }
    }

    /// Stops workers that reached `maxRequestsPerWorker` once they are idle; their seat respawns.
    private func recycleWorkers(in state: inout State) {
        guard let limit = configuration.maxRequestsPerWorker, state.acceptsRequests else { return }
        // One at a time, and only while another worker serves: the pool never goes dark.
        let serving = state.workers.values.filter { $0.ready && !$0.stopping }
        guard !state.workers.values.contains(where: \.stopping), serving.count > 1 || configuration.workers == 1,
              let worker = serving.first(where: { $0.served >= limit && $0.inFlight.isEmpty }) else { return }
        state.workers[worker.pid]!.stopping = true
        state.noteReadiness()
        try? worker.channel.send(ControlMessage(kind: .stop))
    }

    /// Seats whose respawn is due, taken off the schedule: the caller spawns them unlocked.
    private func dueSeats(in state: inout State) -> [Int] {
        guard state.needsWorkers, state.startFailure == nil else { return [] }
        let now = ContinuousClock.now
        let due = state.respawnAt.filter { $0.value <= now }.map(\.key).sorted()
        for seat in due { state.respawnAt[seat] = nil }
        return due
    }

    private func respawn(_ seat: Int) {
        do {
            let worker = try spawn(seat: seat)
            state.withLock { $0.workers[worker.pid] = worker }
        } catch {
            logger.error("cannot start a worker for seat \(seat): \(error)")
            state.withLock { seatFailed(seat, because: "cannot start a worker: \(error)", in: &$0) }
        }
    }

    /// Stops the drained pool's workers and waits for them, outside the lock: a worker that
    /// reads no STOP (still warming up, stopped, hung) is killed at the stop deadline, or
    /// after 5 s, while status stays readable.
    private func stop(_ workers: [State.Worker]) {
        let deadline = min(state.withLock { $0.stopDeadline } ?? .now, .now + .seconds(5))
        for worker in workers { try? worker.channel.send(ControlMessage(kind: .stop)) }
        for worker in workers {
            var status: Int32 = 0
            while waitpid(worker.pid, &status, WNOHANG) == 0 {
                if ContinuousClock.now >= deadline {
                    kill(worker.pid, SIGKILL)
                    waitpid(worker.pid, &status, 0)
                    break
                }
                usleep(2000)
            }
            try? worker.channel.descriptor.close()
            try? worker.exitWatch.close()
        }
        state.withLock { state in
            state.workers.removeAll()
            state.stopped = true
            state.supervising = false
        }
    }

    /// The front's environment with Swift's crash backtracer off: a worker that crashes must
    /// die at once, so its batches are retried now rather than after seconds of symbolication.
    static let workerEnvironment: [String] = ProcessInfo.processInfo.environment
        .filter { $0.key != "SWIFT_BACKTRACE" }.map { "\($0.key)=\($0.value)" } + ["SWIFT_BACKTRACE=enable=no"]

    private func spawn(seat: Int) throws -> State.Worker {
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
        let exitWatch: Int32
        do {
            exitWatch = try retryingOnInterrupt { CLinuxShims_pidfd_open(pid) }
        } catch {
            try? ours.close()
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw error
        }
        return State.Worker(
            pid: pid, seat: seat, channel: ControlChannel(descriptor: ours, layout: arena.layout),
            exitWatch: FileDescriptor(rawValue: exitWatch))
    }

    private func signalSupervisor() {
        var one: UInt64 = 1
        _ = write(wake.rawValue, &one, 8)
    }
}

private func describe(_ status: Int32) -> String {
    let signal = status & 0x7F
    return signal == 0 ? "exit status \((status >> 8) & 0xFF)" : "signal \(signal)"
}

/// Calls `body` with a NULL-terminated `char *[]` of `strings`.
private func withCStrings<Result>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> Result) -> Result {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { pointers.forEach { free($0) } }
    return body(pointers)
}
