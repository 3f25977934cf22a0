import CLinuxShims
import Foundation
import Glibc
import InferenceEngines
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
    /// The hops of the batch: waiting in the front for a worker, the run message reaching
    /// the worker, and its reply reaching the front.
    public var queueSeconds: Double
    public var toWorkerSeconds: Double
    public var fromWorkerSeconds: Double
    /// CLOCK_MONOTONIC (`monotonicNanoseconds()`) when the front had the reply.
    public var completedAt: UInt64
}

/// A snapshot of the pool for status pages and tests.
public struct PoolStatus: Sendable {
    public enum Health: Equatable, Sendable {
        case starting, ready, unhealthy(String), stopping, stopped
    }

    public struct Worker: Sendable {
        public var pid: Int32
        public var seat: Int
        public var cpus: [Int]
        public var ready: Bool
        /// The precision the worker's engine reported when it became ready.
        public var precision: String?
        public var batchesServed: Int
    }

    public var health: Health
    public var workers: [Worker]
    /// Workers replaced after a crash.
    public var restarts: Int
    public var queuedBatches: Int

    /// The precisions the ready workers run at, e.g. "int8+bf16"; "?" before any is ready.
    public var precision: String {
        let reported = Set(workers.compactMap { $0.ready ? $0.precision : nil })
        return reported.isEmpty ? "?" : reported.sorted().joined(separator: "/")
    }
}

/// A pre-started pool of worker processes that run the model on tensors in shared memory.
///
/// Requests reserve a sample position in a slot, write their tensor there (`prepare`), and
/// wait; the supervisor thread packs positions into batches, hands each to the least-loaded
/// ready worker over its control socket, and wakes the requests when the scores are in the
/// slot (`consume`). Workers that die are noticed at once (pidfd, socket EOF), their batch is
/// retried once elsewhere, and they are replaced with back-off.
public final class WorkerPool: @unchecked Sendable {
    public let configuration: PoolConfiguration
    public let arena: SharedArena
    public let cpuSets: [[Int]]
    private let state: Mutex<State>
    private let wake: FileDescriptor
    private let supervisorDone = DispatchSemaphore(value: 0)

    public init(configuration: PoolConfiguration) throws {
        guard (1...PoolConfiguration.maxBatchLimit).contains(configuration.maxBatch) else {
            throw PoolError.invalidConfiguration("the batch size must be between 1 and \(PoolConfiguration.maxBatchLimit)")
        }
        cpuSets = try CPUPlacement.plan(
            workers: configuration.workers, threads: configuration.threadsPerWorker, available: CPUPlacement.availableCPUs(),
            oversubscribe: configuration.oversubscribe)
        self.configuration = configuration
        arena = try SharedArena(
            layout: SharedArena.Layout(
                slotCount: configuration.slotCount, maxBatch: configuration.maxBatch,
                inputFloatsPerSample: configuration.model.sampleInputCount, outputFloatsPerSample: configuration.model.outputCount))
        wake = FileDescriptor(rawValue: try retryingOnInterrupt { CLinuxShims_eventfd() })
        state = Mutex(State(slotCount: configuration.slotCount, seats: configuration.workers))
    }

    deinit {
        try? wake.close()
    }

    // MARK: Lifecycle

    /// Spawns every worker and returns once all have compiled and warmed their engine.
    public func start() async throws {
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
                switch state.health {
                case .starting: state.startWaiters.append(continuation)
                case .ready: continuation.resume()
                case .unhealthy(let reason): continuation.resume(throwing: PoolError.startFailed(reason))
                case .stopping, .stopped: continuation.resume(throwing: PoolError.stopped)
                }
            }
        }
    }

    /// Stops taking requests, lets in-flight ones finish, stops the workers and reaps them.
    /// Nothing is left behind: no child process, descriptor or mapping of the pool's.
    public func shutdown() async {
        let started = state.withLock { state -> Bool in
            state.beginStopping()
            return state.supervising
        }
        signalSupervisor()
        guard started else { return }
        let done = supervisorDone
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                done.wait()
                done.signal()  // for any other caller of shutdown()
                continuation.resume()
            }
        }
    }

    public var status: PoolStatus {
        state.withLock { state in
            PoolStatus(
                health: state.health,
                workers: state.workers.values.sorted { $0.seat < $1.seat }.map {
                    PoolStatus.Worker(pid: $0.pid, seat: $0.seat, cpus: cpuSets[$0.seat], ready: $0.ready, precision: $0.precision, batchesServed: $0.served)
                },
                restarts: state.restarts, queuedBatches: state.dispatchQueue.count)
        }
    }

    // MARK: Requests

    /// Runs one sample through the pool: `prepare` writes its tensor straight into a slot,
    /// `consume` reads its scores from the slot before the slot is reused.
    public func infer<Result>(
        prepare: (UnsafeMutableBufferPointer<Float>) throws -> Void,
        consume: (UnsafeBufferPointer<Float>, InferenceReceipt) throws -> Result
    ) async throws -> Result {
        let (slot, index) = try await reserve()
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
        let receipt = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<InferenceReceipt, Error>) in
            state.withLock { state in
                state.prepared(slot: slot, index: index, waiter: continuation)
                dispatch(in: &state)
            }
        }
        return try consume(arena.output(slot: slot, sample: index), receipt)
    }

    /// A position in a filling batch, waiting for a free slot when all are taken (back-pressure).
    private func reserve() async throws -> (slot: Int, index: Int) {
        while true {
            let (outcome, startedFilling) = try state.withLock { state in
                let filling = state.filling
                let outcome = try state.reserve(maxBatch: configuration.maxBatch, delay: configuration.batchDelay)
                return (outcome, state.filling != filling && state.filling != nil)
            }
            // A new partly filled batch has a deadline the supervisor must wake up for.
            if startedFilling { signalSupervisor() }
            if let outcome { return outcome }
            // A request cancelled while it waits (its deadline passed, its client left) leaves
            // the line without ever taking a slot.
            let ticket = state.withLock { state in
                state.nextTicket += 1
                return state.nextTicket
            }
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                    state.withLock { state in
                        if Task.isCancelled {
                            continuation.resume(throwing: CancellationError())
                        } else if !state.freeSlots.isEmpty || !state.acceptsRequests {
                            continuation.resume()
                        } else if state.slotWaiters.count >= configuration.maxWaitingRequests {
                            continuation.resume(throwing: PoolError.overloaded("\(state.slotWaiters.count) requests are already waiting for a slot"))
                        } else {
                            state.slotWaiters.append((ticket, continuation))
                        }
                    }
                }
            } onCancel: {
                state.withLock { state in
                    guard let index = state.slotWaiters.firstIndex(where: { $0.ticket == ticket }) else { return }
                    state.slotWaiters.remove(at: index).continuation.resume(throwing: CancellationError())
                }
            }
        }
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
    public func sendRawControlMessage(_ bytes: [UInt8], toWorker pid: Int32) throws {
        let channel = state.withLock { $0.workers[pid]?.channel }
        try channel?.sendRaw(bytes)
    }

    // MARK: Supervision

    /// The arbiter: spawn, watch, dispatch, reap, replace, stop. One thread, one poll loop.
    private func superviseUntilStopped() {
        while true {
            let (watched, timeout) = state.withLock { $0.pollSet(wake: wake.rawValue) }
            var descriptors = watched.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            _ = poll(&descriptors, nfds_t(descriptors.count), timeout)
            var counter: UInt64 = 0
            _ = read(wake.rawValue, &counter, 8)
            let drained = state.withLock { state -> [State.Worker]? in
                for (index, entry) in watched.enumerated() where descriptors[index].revents != 0 {
                    switch entry.role {
                    case .wake: break
                    case .control(let pid): _ = receiveMessage(from: pid, in: &state)
                    case .exit(let pid): reap(pid, in: &state)
                    }
                }
                state.sealExpiredBatch()
                dispatch(in: &state)
                recycleWorkers(in: &state)
                respawnDueSeats(in: &state)
                state.failQueuedWithoutCapacity()
                return state.stopRequested && state.batches.isEmpty ? state.workers.values.map { $0 } : nil
            }
            if let drained {
                stop(drained)
                return
            }
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
            state.workers[pid]?.ready = true
            state.workers[pid]?.precision = message.text
            state.consecutiveCrashes[worker.seat] = 0
            state.becomeReadyIfAllSeated(seats: configuration.workers)
        case .done, .error:
            guard let slot = worker.inFlight.first, slot == message.slot, state.batches[slot]?.sequence == message.sequence else {
                condemn(pid, because: "it answered for slot \(message.slot) out of turn", in: &state)
                return false
            }
            state.workers[pid]?.inFlight.removeFirst()
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
        case .run, .stop:
            condemn(pid, because: "it sent a \(message.kind) message, which only the front sends", in: &state)
            return false
        }
        return true
    }

    /// Kills a worker that cannot be trusted; it gets no more batches, and its exit is handled as a crash.
    private func condemn(_ pid: Int32, because reason: String, in state: inout State) {
        log("worker \(pid): \(reason); replacing it")
        state.workers[pid]?.ready = false
        kill(pid, SIGKILL)
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
        for slot in worker.inFlight {
            if state.batches[slot]!.attempts < 2 {
                state.dispatchQueue.insert(slot, at: 0)
            } else {
                state.finish(slot: slot, with: .failure(PoolError.inferenceFailed("the batch crashed two workers")))
            }
        }
        guard state.needsWorkers else { return }
        if worker.stopping {
            state.respawnAt[worker.seat] = .now
            return
        }
        log("worker \(pid) on CPUs \(cpuSets[worker.seat]) exited unexpectedly (\(describe(status)))")
        let now = ContinuousClock.now
        state.crashes = state.crashes.filter { now - $0 < configuration.crashWindow } + [now]
        if state.crashes.count > configuration.crashLimit {
            state.becomeUnhealthy("\(state.crashes.count) worker crashes within \(configuration.crashWindow)")
            return
        }
        let crashes = state.consecutiveCrashes[worker.seat, default: 0]
        state.consecutiveCrashes[worker.seat] = crashes + 1
        state.restarts += 1
        state.respawnAt[worker.seat] = now + .milliseconds(min(5000, 100 << min(crashes, 6)))
    }

    /// Hands queued batches to the ready workers with the fewest batches in hand.
    private func dispatch(in state: inout State) {
        while let slot = state.dispatchQueue.first {
            let candidates = state.workers.values.filter { $0.ready && !$0.stopping && $0.inFlight.count < PoolConfiguration.depthPerWorker }
            guard let worker = candidates.min(by: { ($0.inFlight.count, $0.served) < ($1.inFlight.count, $1.served) }) else { return }
            state.dispatchQueue.removeFirst()
            state.batches[slot]!.attempts += 1
            state.batches[slot]!.dispatchedAt = monotonicNanoseconds()
            let batch = state.batches[slot]!
            do {
                try worker.channel.send(ControlMessage(kind: .run, slot: slot, batch: batch.reserved, sequence: batch.sequence))
                state.workers[worker.pid]!.inFlight.append(slot)
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
        try? worker.channel.send(ControlMessage(kind: .stop))
    }

    private func respawnDueSeats(in state: inout State) {
        guard state.needsWorkers else { return }
        let now = ContinuousClock.now
        for (seat, due) in state.respawnAt where due <= now {
            guard state.acceptsRequests || state.stopRequested else { return }
            state.respawnAt[seat] = nil
            do {
                let worker = try spawn(seat: seat)
                state.workers[worker.pid] = worker
            } catch {
                log("cannot start a worker: \(error)")
                state.becomeUnhealthy("cannot start a worker: \(error)")
            }
        }
    }

    /// Stops the drained pool's workers and waits for them, outside the lock: a worker still
    /// warming up reads no STOP and is killed after 5 s, while status stays readable.
    private func stop(_ workers: [State.Worker]) {
        let deadline = ContinuousClock.now + .seconds(5)
        for worker in workers { try? worker.channel.send(ControlMessage(kind: .stop)) }
        for worker in workers {
            var status: Int32 = 0
            while waitpid(worker.pid, &status, WNOHANG) == 0 {
                if ContinuousClock.now > deadline { kill(worker.pid, SIGKILL) }
                usleep(2000)
            }
            try? worker.channel.descriptor.close()
            try? worker.exitWatch.close()
        }
        state.withLock { state in
            state.workers.removeAll()
            state.health = .stopped
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
        let worker = WorkerConfiguration(
            modelFile: configuration.model.file.path, sampleShape: configuration.model.sampleShape,
            outputCount: configuration.model.outputCount, quantized: configuration.model.quantized, engine: configuration.engine.kind, threads: configuration.threadsPerWorker,
            precision: configuration.engine.precision, cacheDirectory: configuration.engine.cacheDirectory?.path,
            slotCount: arena.layout.slotCount, maxBatch: arena.layout.maxBatch, cpus: cpuSets[seat], parentPID: getpid())
        let arguments = [configuration.workerExecutable.path, "worker", "--configuration", worker.encoded()]
        var pid: pid_t = 0
        let result = withCStrings(arguments) { argv in
            withCStrings(Self.workerEnvironment) { envp in
                CLinuxShims_spawn_worker(configuration.workerExecutable.path, argv, envp, arena.descriptor.rawValue, theirs.rawValue, &pid)
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

    private func log(_ text: String) {
        FileHandle.standardError.write(Data("visionpool pool: \(text)\n".utf8))
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
