import EngineInterface
import Logging

/// The pool's decisions, as a state machine that spawns nothing and does no I/O: requests
/// arrive for a position in a slot and wait in a first-come line while every slot is taken;
/// positions form batches under a `BatchingPolicy`; sealed, written batches go to the
/// least-loaded ready worker; a batch whose worker dies is retried once elsewhere; seats whose
/// worker died are refilled with back-off; a worker past its timeout is killed; a stopping pool
/// drains. `WorkerPool` feeds it events (with the time) and carries out the actions it returns.
///
/// A slot's batch moves through one phase at a time: filling → writing → queued → running →
/// finished, and back to queued if its worker dies (once). Each of its places is held by one
/// request: writing, waiting for the outcome, delivered, or gone.
public struct SlotScheduler: Sendable {
    /// One request, from its arrival to its release.
    public typealias Ticket = UInt64

    /// Where a request writes its sample and reads its scores.
    public struct Position: Sendable, Equatable {
        public let slot: Int
        public let index: Int
    }

    /// What the scheduler is built with; nothing in it changes while the pool runs.
    public struct Settings: Sendable {
        public var slots: Int
        /// Each seat holds one worker process.
        public var seats: Int
        public var policy: any BatchingPolicy
        /// Batches one worker holds at once: one running, the rest queued behind it.
        public var queueDepth: Int
        /// Requests that may wait in line for a position; past this, refused at once.
        public var maxWaiting: Int
        /// Crashes in a row of one seat that make a crash loop.
        public var crashLimit: Int
        /// With no worker ready for this long (after the first start), the pool is not live.
        public var liveness: Duration
        /// The watchdog's limit for every worker; nil: ten times its largest warm-up batch, at least `minimumWorkerTimeout`.
        public var workerTimeout: Duration?
        /// A worker that has run this many batches is replaced once idle (bounded leaks).
        public var recycleAfter: Int?
        /// Each seat's CPUs, and the model's name, for log lines.
        public var cpuSets: [[Int]]
        public var model: String

        public init(
            slots: Int, seats: Int, policy: any BatchingPolicy, queueDepth: Int = PoolConfiguration.depthPerWorker, maxWaiting: Int = 256,
            crashLimit: Int = 5, liveness: Duration = .seconds(60), workerTimeout: Duration? = nil, recycleAfter: Int? = nil, cpuSets: [[Int]] = [],
            model: String = "the model"
        ) {
            self.model = model
            (self.slots, self.seats, self.policy, self.queueDepth, self.maxWaiting) = (slots, seats, policy, queueDepth, maxWaiting)
            (self.crashLimit, self.liveness, self.workerTimeout, self.recycleAfter) = (crashLimit, liveness, workerTimeout, recycleAfter)
            self.cpuSets = cpuSets.isEmpty ? Array(repeating: [], count: seats) : cpuSets
        }

        /// How long a worker whose largest warm-up batch took `warmUp` may run one batch.
        func timeout(warmUp: Duration) -> Duration { workerTimeout ?? max(PoolConfiguration.minimumWorkerTimeout, warmUp * 10) }
    }

    /// What a worker said about a batch it ran.
    public struct WorkerReply: Sendable, Equatable {
        public var inferenceNanoseconds: UInt64 = 0
        public var inputOffset = 0
        public var outputOffset = 0
        /// `CLOCK_MONOTONIC` when the worker received the run message and when it replied.
        public var receivedAt: Nanoseconds = 0
        public var repliedAt: Nanoseconds = 0

        public init(inferenceNanoseconds: UInt64 = 0, inputOffset: Int = 0, outputOffset: Int = 0, receivedAt: Nanoseconds = 0, repliedAt: Nanoseconds = 0) {
            (self.inferenceNanoseconds, self.inputOffset, self.outputOffset, self.receivedAt, self.repliedAt) =
                (inferenceNanoseconds, inputOffset, outputOffset, receivedAt, repliedAt)
        }
    }

    /// A finished batch, as its requests learn it.
    public struct BatchReport: Sendable, Equatable {
        public var worker: Int32
        public var slot: Int
        public var size: Int
        /// Workers the batch was sent to: 2 after a crash and retry.
        public var attempts: Int
        public var queuedAt: Nanoseconds
        public var dispatchedAt: Nanoseconds
        public var reply: WorkerReply
        /// When the front had the reply.
        public var completedAt: Nanoseconds
    }

    public enum Event: Sendable {
        /// A request wants a position.
        case arrive(Ticket)
        /// A request waiting in line gives up (cancelled): it leaves without a position.
        case leaveLine(Ticket)
        /// A request's sample is in its position.
        case written(Ticket)
        /// A request could not write its sample (a bad image): its place is given up.
        case writeFailed(Ticket)
        /// A request has read its scores (or the failure): its place is free.
        case released(Ticket)
        /// The pool started a worker for `seat`, or could not.
        case spawned(seat: Int, pid: Int32)
        case spawnFailed(seat: Int, reason: String)
        /// A worker compiled and warmed its engine; its largest warm-up batch took `warmUp`.
        case ready(pid: Int32, engine: EngineDescription?, warmUp: Duration)
        /// A worker could not build its engine, and says why before it exits.
        case startFailed(pid: Int32, reason: String)
        /// A worker's answer for the batch in `slot`: its reply, or the engine's error.
        case replied(pid: Int32, slot: Int, sequence: UInt64, result: Result<WorkerReply, WorkerFailure>)
        /// A worker broke the protocol or its socket failed: it gets no more batches.
        case misbehaved(pid: Int32, reason: String)
        /// A worker's process ended, with its exit described ("exit status 2", "signal 9").
        case exited(pid: Int32, status: String)
        /// Time passed: deadlines due now are acted on.
        case tick
        /// Stop: take no more requests, finish what is in hand by `deadline`, stop the workers.
        case stop(deadline: Nanoseconds)
    }

    /// An engine's error for one batch, in its words.
    public struct WorkerFailure: Error, Sendable, Equatable {
        public let message: String
        public init(_ message: String) { self.message = message }
    }

    public enum Action: Sendable, Equatable {
        /// Resume a request with its position.
        case grant(Ticket, Position)
        /// Resume a request with a refusal.
        case refuse(Ticket, PoolError)
        /// Resume a request that left the line with its cancellation.
        case leave(Ticket)
        /// Send `run` for the batch in `slot` to `worker`.
        case run(worker: Int32, slot: Int, batch: Int, sequence: UInt64)
        /// Resume the requests of a finished batch with its outcome.
        case complete([Ticket], Result<BatchReport, PoolError>)
        /// Start a worker for `seat`, then report `spawned` or `spawnFailed`.
        case spawn(seat: Int)
        /// Ask a worker to exit after its current batch.
        case stopWorker(Int32)
        case kill(Int32)
        case log(Logger.Level, String)
        /// Every seat's worker is ready for the first time; or the start failed.
        case started
        case startFailed(PoolError)
        /// Every worker is gone after a stop: the supervisor's loop ends.
        case stopped
        /// A deadline earlier than the supervisor's sleep appeared (a batch began filling, a stop).
        case wake
    }

    /// The pool's own life: one state, not a set of flags.
    public enum Phase: Sendable, Equatable {
        /// Workers are warming up for the first time.
        case starting
        case serving
        /// A start that cannot succeed (every retry would fail alike); nothing is served.
        case failed(String)
        /// Finishing what is in hand by `deadline`; workers are told to stop once nothing is.
        case draining(deadline: Nanoseconds)
        case stopped
    }

    struct Batch {
        enum Phase: Equatable {
            case filling(opened: Nanoseconds)
            /// Sealed; some places are still being written.
            case writing
            /// Written; waiting for a worker.
            case queued
            case running(worker: Int32)
            /// Its outcome went to its requests; the slot frees when the last lets go.
            case finished(Result<BatchReport, PoolError>)
        }

        enum Place: Equatable {
            case writing(Ticket)
            case waiting(Ticket)
            case delivered(Ticket)
            case gone
        }

        let sequence: UInt64
        var phase: Phase
        var places: [Place]
        var attempts = 0
        var queuedAt: Nanoseconds = 0
        var dispatchedAt: Nanoseconds = 0

        var isWritten: Bool { !places.contains { if case .writing = $0 { true } else { false } } }
        var waitingTickets: [Ticket] { places.compactMap { if case .waiting(let ticket) = $0 { ticket } else { nil } } }
        var isReleased: Bool { places.allSatisfy { $0 == .gone } }
        var isFinished: Bool { if case .finished = phase { true } else { false } }
    }

    struct Worker {
        enum Phase: Equatable {
            case starting, ready
            /// Told to stop (recycled, or the pool is stopping): its exit is not a crash.
            case stopping
            /// Killed for a reason; its exit is a crash.
            case condemned
        }

        let pid: Int32
        let seat: Int
        var phase = Phase.starting
        var engine: EngineDescription?
        /// Slots sent to it and not answered yet.
        var running: [Int] = []
        var served = 0
        /// Since when it has run its current batch: the watchdog's clock.
        var busySince: Nanoseconds?
        var timeout = PoolConfiguration.minimumWorkerTimeout
        /// Killed by the watchdog: its batch is retried as after a crash, but reported as a timeout.
        var timedOut = false
        var startFailure: String?
    }

    enum Seat: Equatable {
        /// Empty; refilled once the time comes, while workers are needed.
        case waiting(until: Nanoseconds)
        case spawning
        case occupied(Int32)
    }

    public let settings: Settings
    public private(set) var phase = Phase.starting
    private(set) var batches: [Int: Batch] = [:]
    private var freeSlots: [Int]
    private var filling: Int?
    private var queue: [Int] = []
    private var line: [Ticket] = []
    private var positions: [Ticket: Position] = [:]
    private(set) var workers: [Int32: Worker] = [:]
    private(set) var seats: [Seat]
    private var crashes: [Int]
    private var nextSequence: UInt64 = 1
    public private(set) var restarts = 0
    /// Batches run by size: how many, and the engine's nanoseconds for them (Triton's batch statistics).
    public private(set) var executions: [Int: PoolStatus.Executions] = [:]
    private var lastCrash = ""
    private var noReadyWorkerSince: Nanoseconds?
    private var stopsSentAt: Nanoseconds?
    private var reportedFallback: PrecisionFallback?

    public init(_ settings: Settings, now: Nanoseconds) {
        self.settings = settings
        freeSlots = Array((0..<settings.slots).reversed())
        seats = Array(repeating: .waiting(until: now), count: settings.seats)
        crashes = Array(repeating: 0, count: settings.seats)
        noReadyWorkerSince = now
    }

    // MARK: Events

    public mutating func handle(_ event: Event, at now: Nanoseconds) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .arrive(let ticket): arrive(ticket, now, &actions)
        case .leaveLine(let ticket):
            if let index = line.firstIndex(of: ticket) {
                line.remove(at: index)
                actions.append(.leave(ticket))
            }
        case .written(let ticket): setPlace(of: ticket, to: .waiting(ticket), now, &actions)
        case .writeFailed(let ticket): setPlace(of: ticket, to: .gone, now, &actions)
        case .released(let ticket): setPlace(of: ticket, to: .gone, now, &actions)
        case .spawned(let seat, let pid):
            seats[seat] = .occupied(pid)
            workers[pid] = Worker(pid: pid, seat: seat)
        case .spawnFailed(let seat, let reason):
            actions.append(.log(.error, "cannot start a worker for seat \(seat): \(reason)"))
            seatFailed(seat, because: "cannot start a worker: \(reason)", now, &actions)
        case .ready(let pid, let engine, let warmUp): ready(pid, engine, warmUp, now, &actions)
        case .startFailed(let pid, let reason):
            workers[pid]?.startFailure = reason
            if phase == .starting { fail(.startFailed(reason), &actions) }
        case .replied(let pid, let slot, let sequence, let result): replied(pid, slot, sequence, result, now, &actions)
        case .misbehaved(let pid, let reason): condemn(pid, because: reason, now, &actions)
        case .exited(let pid, let status): exited(pid, status, now, &actions)
        case .tick: tick(now, &actions)
        case .stop(let deadline): stop(deadline, now, &actions)
        }
        settle(now, &actions)
        return actions
    }

    private mutating func arrive(_ ticket: Ticket, _ now: Nanoseconds, _ actions: inout [Action]) {
        switch phase {
        case .failed(let reason):
            actions.append(.refuse(ticket, .startFailed(reason)))
            return
        case .draining, .stopped:
            actions.append(.refuse(ticket, .stopped))
            return
        case .starting, .serving: break
        }
        if inCrashLoop {
            actions.append(.refuse(ticket, .unavailable(health(at: now).description)))
        } else if line.isEmpty, let position = place(ticket, now, &actions) {
            actions.append(.grant(ticket, position))
        } else if line.count >= settings.maxWaiting {
            actions.append(.refuse(ticket, .overloaded("\(line.count) requests are already waiting for a slot")))
        } else {
            line.append(ticket)
        }
    }

    /// A place in the filling batch, or the first in a free slot's new batch; nil when every slot is taken.
    private mutating func place(_ ticket: Ticket, _ now: Nanoseconds, _ actions: inout [Action]) -> Position? {
        let maxBatch = settings.policy.maxBatch
        if let slot = filling, batches[slot]!.places.count < maxBatch {
            batches[slot]!.places.append(.writing(ticket))
            let position = Position(slot: slot, index: batches[slot]!.places.count - 1)
            positions[ticket] = position
            if batches[slot]!.places.count == maxBatch { seal(slot, now, &actions) }
            return position
        }
        guard let slot = freeSlots.popLast() else { return nil }
        batches[slot] = Batch(sequence: nextSequence, phase: maxBatch == 1 ? .writing : .filling(opened: now), places: [.writing(ticket)])
        nextSequence += 1
        if maxBatch > 1 {
            filling = slot
            actions.append(.wake)
        }
        let position = Position(slot: slot, index: 0)
        positions[ticket] = position
        return position
    }

    /// A request's place changes: written, given up, or released after its outcome.
    private mutating func setPlace(of ticket: Ticket, to place: Batch.Place, _ now: Nanoseconds, _ actions: inout [Action]) {
        guard let position = positions[ticket], let batch = batches[position.slot] else { return }
        if place == .gone { positions[ticket] = nil }
        if case .finished(let outcome) = batch.phase, case .waiting = place {
            // Cut off (a stop ran out of time) while this sample was still being written.
            batches[position.slot]!.places[position.index] = .delivered(ticket)
            actions.append(.complete([ticket], outcome))
            return
        }
        batches[position.slot]!.places[position.index] = place
        if batches[position.slot]!.phase == .writing, batches[position.slot]!.isWritten { enqueue(position.slot, now, &actions) }
        freeIfReleased(position.slot, now, &actions)
    }

    /// No more places: the batch waits for its last samples, or for a worker.
    private mutating func seal(_ slot: Int, _ now: Nanoseconds, _ actions: inout [Action]) {
        if filling == slot { filling = nil }
        batches[slot]!.phase = .writing
        if batches[slot]!.isWritten { enqueue(slot, now, &actions) }
    }

    /// A written batch joins the queue for a worker; one nobody waits for any more is dropped.
    private mutating func enqueue(_ slot: Int, _ now: Nanoseconds, _ actions: inout [Action]) {
        guard !batches[slot]!.waitingTickets.isEmpty else {
            batches[slot]!.phase = .finished(.failure(.stopped))  // nobody to tell
            return
        }
        if case .failed(let reason) = phase {
            finish(slot, .failure(.startFailed(reason)), &actions)
        } else if inCrashLoop {
            finish(slot, .failure(.unavailable(health(at: now).description)), &actions)
        } else {
            batches[slot]!.phase = .queued
            batches[slot]!.queuedAt = now
            queue.append(slot)
        }
    }

    /// Wakes a batch's waiting requests with its outcome.
    private mutating func finish(_ slot: Int, _ outcome: Result<BatchReport, PoolError>, _ actions: inout [Action]) {
        let tickets = batches[slot]!.waitingTickets
        batches[slot]!.phase = .finished(outcome)
        for (index, place) in batches[slot]!.places.enumerated() {
            if case .waiting(let ticket) = place { batches[slot]!.places[index] = .delivered(ticket) }
        }
        queue.removeAll { $0 == slot }
        if !tickets.isEmpty { actions.append(.complete(tickets, outcome)) }
    }

    /// A sealed batch no request holds any more gives its slot back, to the first in line.
    private mutating func freeIfReleased(_ slot: Int, _ now: Nanoseconds, _ actions: inout [Action]) {
        guard let batch = batches[slot], batch.isReleased else { return }
        // A worker still writes into a slot it runs, even one whose requests were cut off.
        if case .running = batch.phase { return }
        guard !workers.values.contains(where: { $0.running.contains(slot) }) else { return }
        batches[slot] = nil
        if filling == slot { filling = nil }
        queue.removeAll { $0 == slot }
        freeSlots.append(slot)
        while let ticket = line.first, let position = place(ticket, now, &actions) {
            line.removeFirst()
            actions.append(.grant(ticket, position))
        }
    }

    private mutating func ready(_ pid: Int32, _ engine: EngineDescription?, _ warmUp: Duration, _ now: Nanoseconds, _ actions: inout [Action]) {
        guard let worker = workers[pid], worker.phase == .starting else { return }
        workers[pid]!.phase = .ready
        workers[pid]!.engine = engine
        workers[pid]!.timeout = settings.timeout(warmUp: warmUp)
        crashes[worker.seat] = 0
        noReadyWorkerSince = nil
        if let engine, let fallback = engine.fallback, fallback != reportedFallback {
            reportedFallback = fallback
            actions.append(.log(.warning, "worker \(pid) runs \(settings.model) at \(engine.precision): \(fallback)"))
        }
        if phase == .starting, readyWorkers == settings.seats {
            phase = .serving
            actions.append(.started)
        }
    }

    private mutating func replied(
        _ pid: Int32, _ slot: Int, _ sequence: UInt64, _ result: Result<WorkerReply, WorkerFailure>, _ now: Nanoseconds, _ actions: inout [Action]
    ) {
        guard let worker = workers[pid], worker.running.contains(slot), let batch = batches[slot], batch.sequence == sequence else {
            condemn(pid, because: "it answered for slot \(slot) (sequence \(sequence)), which it was not running", now, &actions)
            return
        }
        workers[pid]!.running.removeAll { $0 == slot }
        workers[pid]!.served += 1
        workers[pid]!.busySince = workers[pid]!.running.isEmpty ? nil : now
        if case .success(let reply) = result {
            executions[batch.places.count, default: .init()].count += 1
            executions[batch.places.count, default: .init()].inferenceNanoseconds += reply.inferenceNanoseconds
        }
        if batch.phase == .running(worker: pid) {
            finish(slot, result.map { reply in
                BatchReport(
                    worker: pid, slot: slot, size: batch.places.count, attempts: batch.attempts, queuedAt: batch.queuedAt,
                    dispatchedAt: batch.dispatchedAt, reply: reply, completedAt: now)
            }.mapError { .inferenceFailed($0.message) }, &actions)
        }
        freeIfReleased(slot, now, &actions)
    }

    /// A worker that cannot be trusted gets no more batches and is killed; its exit is a crash.
    private mutating func condemn(_ pid: Int32, because reason: String, _ now: Nanoseconds, _ actions: inout [Action]) {
        guard let worker = workers[pid], worker.phase != .condemned else { return }
        workers[pid]!.phase = .condemned
        noteReadiness(now)
        // After a failed start the pool is torn down and its reason already given: a worker that
        // exited meanwhile (its socket gone) is no second error, and nothing replaces it.
        if case .failed = phase {} else { actions.append(.log(.error, "worker \(pid): \(reason); replacing it")) }
        actions.append(.kill(pid))
    }

    /// A worker's process ended: its batches are retried elsewhere (once), its seat refilled.
    private mutating func exited(_ pid: Int32, _ status: String, _ now: Nanoseconds, _ actions: inout [Action]) {
        guard let worker = workers.removeValue(forKey: pid) else { return }
        seats[worker.seat] = .waiting(until: now)
        noteReadiness(now)
        for slot in worker.running.reversed() {
            guard batches[slot]!.phase == .running(worker: pid) else {
                freeIfReleased(slot, now, &actions)  // cut off by the stop: nobody waits for it
                continue
            }
            if batches[slot]!.attempts < 2 {
                batches[slot]!.phase = .queued
                queue.insert(slot, at: 0)
            } else {
                finish(slot, .failure(worker.timedOut
                    ? .timedOut("the batch outran the worker timeout on two workers") : .inferenceFailed("the batch crashed two workers")), &actions)
                freeIfReleased(slot, now, &actions)
            }
        }
        // A failed start says why in its error, and a stopping pool or worker is expected to go.
        guard phase == .starting || phase == .serving, worker.phase != .stopping else { return }
        let reason = worker.timedOut ? "killed after its worker timeout" : worker.startFailure.map { "could not start: \($0)" } ?? status
        actions.append(.log(.error, "worker \(pid) on CPUs \(settings.cpuSets[worker.seat]) exited unexpectedly (\(reason))"))
        seatFailed(worker.seat, because: "worker \(pid) \(reason)", now, &actions)
    }

    /// A seat lost its worker, or could not start one: refilled after a capped back-off, for
    /// ever once the pool has served; a crash loop before that fails the start.
    private mutating func seatFailed(_ seat: Int, because reason: String, _ now: Nanoseconds, _ actions: inout [Action]) {
        crashes[seat] += 1
        lastCrash = reason
        restarts += 1
        if phase == .starting, crashes[seat] >= settings.crashLimit {
            fail(.startFailed("\(crashes[seat]) workers in a row failed to start; last: \(reason)"), &actions)
            return
        }
        let backoff = Duration.milliseconds(min(5000, 100 << min(crashes[seat] - 1, 6)))
        seats[seat] = .waiting(until: now + backoff.nanoseconds)
    }

    /// The start cannot succeed: nothing waits for it any more.
    private mutating func fail(_ error: PoolError, _ actions: inout [Action]) {
        guard case .startFailed(let reason) = error, phase == .starting else { return }
        phase = .failed(reason)
        for ticket in line { actions.append(.refuse(ticket, error)) }
        line = []
        for slot in queue { finish(slot, .failure(error), &actions) }
        actions.append(.startFailed(error))
    }

    private mutating func tick(_ now: Nanoseconds, _ actions: inout [Action]) {
        for worker in workers.values where worker.phase != .condemned {
            guard let since = worker.busySince, now >= since + worker.timeout.nanoseconds else { continue }
            workers[worker.pid]!.timedOut = true
            condemn(worker.pid, because: "its batch has run for more than its \(worker.timeout) worker timeout", now, &actions)
        }
        recycle(&actions)
        if case .draining(let deadline) = phase {
            let unfinished = batches.keys.filter { !batches[$0]!.isFinished }
            if now >= deadline, !unfinished.isEmpty {
                actions.append(.log(.warning, "the graceful stop ran out of time: \(unfinished.count) batches cut off"))
                for slot in unfinished { finish(slot, .failure(.stopped), &actions) }
            }
            // A worker that reads no stop message (still warming up, stopped, hung) is killed.
            if let sent = stopsSentAt, now >= min(deadline, sent + Self.stopGrace.nanoseconds) {
                for worker in workers.values where worker.phase != .condemned {
                    workers[worker.pid]!.phase = .condemned
                    actions.append(.kill(worker.pid))
                }
            }
        }
        guard needsWorkers else { return }
        for seat in seats.indices {
            guard case .waiting(let until) = seats[seat], until <= now else { continue }
            seats[seat] = .spawning
            actions.append(.spawn(seat: seat))
        }
    }

    /// How long a stopping pool waits for a worker to act on its stop message.
    static let stopGrace = Duration.seconds(5)

    /// Workers that reached `recycleAfter` are replaced once idle: one at a time, and only while
    /// another serves, so the pool never goes dark.
    private mutating func recycle(_ actions: inout [Action]) {
        guard let limit = settings.recycleAfter, phase == .serving, !workers.values.contains(where: { $0.phase == .stopping }) else { return }
        let serving = workers.values.filter { $0.phase == .ready }
        guard serving.count > 1 || settings.seats == 1,
              let worker = serving.first(where: { $0.served >= limit && $0.running.isEmpty }) else { return }
        workers[worker.pid]!.phase = .stopping
        actions.append(.stopWorker(worker.pid))
    }

    private mutating func stop(_ deadline: Nanoseconds, _ now: Nanoseconds, _ actions: inout [Action]) {
        switch phase {
        case .stopped: return
        case .draining(let earlier):
            phase = .draining(deadline: min(earlier, deadline))
        case .starting:
            phase = .draining(deadline: deadline)
            actions.append(.startFailed(.stopped))
        case .failed, .serving:
            phase = .draining(deadline: deadline)
        }
        for ticket in line { actions.append(.refuse(ticket, .stopped)) }
        line = []
        actions.append(.wake)
    }

    /// What follows every event: the filling batch is sealed when its policy says so or once no
    /// more requests are taken; queued batches go to free workers; a queue no worker can take
    /// fails; a draining pool stops its workers once nothing is in hand, and is stopped once they are gone.
    private mutating func settle(_ now: Nanoseconds, _ actions: inout [Action]) {
        if let sealAt = fillingSealTime, sealAt <= now || !acceptsRequests, let slot = filling { seal(slot, now, &actions) }
        dispatch(now, &actions)
        if !queue.isEmpty {
            let error: PoolError? = inCrashLoop ? .unavailable(health(at: now).description) : (workers.isEmpty && !needsWorkers ? .stopped : nil)
            if let error {
                for slot in queue { finish(slot, .failure(error), &actions) }
            }
        }
        guard case .draining = phase else { return }
        if batches.values.allSatisfy(\.isFinished) {
            // One still warming up reads its stop message once warm.
            for worker in workers.values where worker.phase == .ready || worker.phase == .starting {
                workers[worker.pid]!.phase = .stopping
                actions.append(.stopWorker(worker.pid))
                stopsSentAt = stopsSentAt ?? now
            }
        }
        if workers.isEmpty, !seats.contains(.spawning) {
            phase = .stopped
            actions.append(.stopped)
        }
    }

    /// When the policy seals the batch now filling, asked after every event (a worker that
    /// frees up can seal it early); nil when none is filling.
    private var fillingSealTime: Nanoseconds? {
        guard let slot = filling, case .filling(let opened) = batches[slot]!.phase else { return nil }
        let idleWorkers = workers.values.count(where: { $0.phase == .ready && $0.running.isEmpty })
        // A sealed batch whose samples are still being written has an idle worker spoken for.
        let waiting = queue.count + batches.values.count(where: { $0.phase == .writing })
        return settings.policy.sealTime(opened: opened, size: batches[slot]!.places.count, queued: waiting, idleWorkers: idleWorkers)
    }

    /// Queued batches go to the ready workers with the fewest batches in hand.
    private mutating func dispatch(_ now: Nanoseconds, _ actions: inout [Action]) {
        while let slot = queue.first {
            let candidates = workers.values.filter { $0.phase == .ready && $0.running.count < settings.queueDepth }
            guard let worker = candidates.min(by: { ($0.running.count, $0.served, $0.pid) < ($1.running.count, $1.served, $1.pid) }) else { return }
            queue.removeFirst()
            batches[slot]!.attempts += 1
            batches[slot]!.dispatchedAt = now
            batches[slot]!.phase = .running(worker: worker.pid)
            workers[worker.pid]!.running.append(slot)
            if worker.running.isEmpty { workers[worker.pid]!.busySince = now }
            actions.append(.run(worker: worker.pid, slot: slot, batch: batches[slot]!.places.count, sequence: batches[slot]!.sequence))
        }
    }

    private mutating func noteReadiness(_ now: Nanoseconds) {
        if readyWorkers > 0 {
            noReadyWorkerSince = nil
        } else if noReadyWorkerSince == nil {
            noReadyWorkerSince = now
        }
    }

    // MARK: What the pool reads

    var acceptsRequests: Bool { phase == .starting || phase == .serving }
    var readyWorkers: Int { workers.values.filter { $0.phase == .ready }.count }
    /// Requests can be served now.
    public var canServe: Bool { phase == .serving && readyWorkers > 0 }
    public var queuedBatches: Int { queue.count }
    /// Every seat's replacements keep crashing and none is ready: waiting would not help.
    var inCrashLoop: Bool { readyWorkers == 0 && crashes.allSatisfy { $0 >= settings.crashLimit } }
    /// Workers are still needed: the pool serves, or a stopping pool has batches queued.
    var needsWorkers: Bool {
        switch phase {
        case .starting, .serving: true
        case .draining: !queue.isEmpty
        case .failed, .stopped: false
        }
    }

    public func health(at now: Nanoseconds) -> PoolStatus.Health {
        switch phase {
        case .stopped: return .stopped
        case .draining: return .stopping
        case .failed(let reason): return .failing(reason)
        case .starting: return .starting
        case .serving: break
        }
        if let since = noReadyWorkerSince, now >= since + settings.liveness.nanoseconds {
            return .failing("no worker has been ready for \((now - since) / 1_000_000_000) s; last: \(lastCrash)")
        }
        let crashing = crashes.indices.filter { crashes[$0] > 0 }
        guard crashing.isEmpty else {
            let described = crashing.map { "seat \($0): \(crashes[$0]) in a row" }.joined(separator: ", ")
            return .degraded("\(readyWorkers) of \(settings.seats) workers ready; crashes (\(described)); last: \(lastCrash)")
        }
        return .ready
    }

    /// When the next deadline falls (a filling batch's seal, a busy worker's timeout, a seat's
    /// refill, the stop); nil when none is set.
    public func nextDeadline() -> Nanoseconds? {
        var due: [Nanoseconds] = []
        if let sealAt = fillingSealTime { due.append(sealAt) }
        for worker in workers.values { if let since = worker.busySince { due.append(since + worker.timeout.nanoseconds) } }
        if needsWorkers {
            for seat in seats { if case .waiting(let until) = seat { due.append(until) } }
        }
        if case .draining(let deadline) = phase {
            due.append(deadline)
            if let sent = stopsSentAt { due.append(sent + Self.stopGrace.nanoseconds) }
        }
        return due.min()
    }
}
