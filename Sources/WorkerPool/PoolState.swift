import SystemSupport
import Glibc
import EngineInterface
import Logging
import SystemPackage

extension WorkerPool {
    /// Everything the supervisor and the requests share, behind one lock.
    struct State {
        struct Worker {
            let pid: Int32
            let seat: Int
            let channel: ControlChannel
            /// A pidfd: readable the moment the process exits.
            let exitWatch: FileDescriptor
            var ready = false
            /// What the worker's engine runs as, from its ready message.
            var engine: EngineDescription?
            /// Why the worker could not build its engine, from its `startFailed` message.
            var startFailure: String?
            var stopping = false
            /// Slots sent to this worker, in the order it answers them.
            var inFlight: [Int] = []
            var served = 0
            /// Since when the worker has been running the first of `inFlight`: the watchdog's clock.
            var busySince: ContinuousClock.Instant?
            /// How long this worker may run one batch (from its warm-up time, see `PoolConfiguration`).
            var timeout: Duration = PoolConfiguration.minimumWorkerTimeout
            /// Killed by the watchdog: its batch is retried as after a crash, but reported as a timeout.
            var timedOut = false
        }

        /// One slot's batch, from its first reservation to its last release.
        struct Batch {
            let sequence: UInt64
            let deadline: ContinuousClock.Instant
            var reserved = 1
            var prepared = 0
            var sealed = false
            var attempts = 0
            /// CLOCK_MONOTONIC when every position was written, and when it was last sent to a worker.
            var queuedAt: UInt64 = 0
            var dispatchedAt: UInt64 = 0
            /// Requests holding a position (prepared or not) that have not released it.
            var outstanding = 1
            var waiters: [CheckedContinuation<InferenceReceipt, Error>] = []
            var outcome: Result<InferenceReceipt, Error>?
        }

        enum WatchRole {
            case wake
            case control(Int32)
            case exit(Int32)
        }

        var supervising = false
        /// The pool was ready once: from then on it never gives up, it degrades.
        var started = false
        var startFailure: String?
        var stopRequested = false
        /// When a stopping pool stops waiting for its batches and kills its workers.
        var stopDeadline: ContinuousClock.Instant?
        var stopped = false
        var workers: [Int32: Worker] = [:]
        var respawnAt: [Int: ContinuousClock.Instant] = [:]
        var consecutiveCrashes: [Int: Int] = [:]
        /// Why the last worker went away unexpectedly, for health reports.
        var lastCrash = ""
        /// Since when no worker has been ready (nil while one is).
        var noReadyWorkerSince: ContinuousClock.Instant? = .now
        let crashLimit: Int
        let livenessTimeout: Duration
        /// The last precision fallback logged: each new one is logged once, not once per worker.
        var reportedFallback: PrecisionFallback?
        /// What the supervisor logs once it has let go of the lock.
        var pendingLogs: [(level: Logger.Level, text: String)] = []
        var restarts = 0
        var batches: [Int: Batch] = [:]
        var freeSlots: [Int]
        var filling: Int?
        var dispatchQueue: [Int] = []
        /// Requests waiting for a position, first come first served: a freed slot goes to the
        /// first of them, never to a newcomer.
        var slotWaiters: [(ticket: UInt64, continuation: CheckedContinuation<(slot: Int, index: Int), Error>)] = []
        var startWaiters: [CheckedContinuation<Void, Error>] = []
        var nextSequence: UInt64 = 1
        var nextTicket: UInt64 = 0

        let maxBatch: Int
        let batchDelay: Duration

        init(_ configuration: PoolConfiguration) {
            freeSlots = Array((0..<configuration.slotCount).reversed())
            crashLimit = configuration.crashLimit
            livenessTimeout = configuration.livenessTimeout
            maxBatch = configuration.maxBatch
            batchDelay = configuration.batchDelay
        }

        var acceptsRequests: Bool { !stopRequested && startFailure == nil }
        var readyWorkers: Int { workers.values.filter { $0.ready && !$0.stopping }.count }
        /// Started, not stopping, and some worker ready (so not failing either).
        var canServe: Bool { started && acceptsRequests && readyWorkers > 0 }
        /// Every seat's replacements keep crashing and none is ready: waiting would not help.
        var inCrashLoop: Bool {
            readyWorkers == 0 && !consecutiveCrashes.isEmpty && consecutiveCrashes.values.allSatisfy { $0 >= crashLimit }
        }

        var health: PoolStatus.Health {
            if stopped { return .stopped }
            if stopRequested { return .stopping }
            if let startFailure { return .failing(startFailure) }
            guard started else { return .starting }
            if let since = noReadyWorkerSince, ContinuousClock.now - since >= livenessTimeout {
                return .failing("no worker has been ready for \(Int((ContinuousClock.now - since).seconds)) s; last: \(lastCrash)")
            }
            let crashing = consecutiveCrashes.filter { $0.value > 0 }
            guard crashing.isEmpty else {
                let seats = crashing.keys.sorted().map { "seat \($0): \(crashing[$0]!) in a row" }.joined(separator: ", ")
                return .degraded("\(readyWorkers) of \(workers.count + respawnAt.count) workers ready; crashes (\(seats)); last: \(lastCrash)")
            }
            return .ready
        }

        mutating func log(_ level: Logger.Level, _ text: String) {
            pendingLogs.append((level, text))
        }

        /// Keeps `noReadyWorkerSince` true to the workers.
        mutating func noteReadiness() {
            if readyWorkers > 0 {
                noReadyWorkerSince = nil
            } else if noReadyWorkerSince == nil {
                noReadyWorkerSince = .now
            }
        }
        /// Workers are still needed: the pool serves, or a stopping pool has batches queued.
        var needsWorkers: Bool { !stopRequested || !dispatchQueue.isEmpty }

        // MARK: Requests

        /// A position in the filling batch, or a new batch in a free slot; nil when every slot
        /// is taken or earlier requests are waiting for one.
        mutating func reserve(newcomer: Bool = true) throws -> (slot: Int, index: Int)? {
            guard !stopRequested else { throw PoolError.stopped }
            if let startFailure { throw PoolError.startFailed(startFailure) }
            if inCrashLoop { throw PoolError.unavailable(health.description) }
            if newcomer, !slotWaiters.isEmpty { return nil }
            if let slot = filling, var batch = batches[slot], !batch.sealed, batch.reserved < maxBatch {
                let index = batch.reserved
                batch.reserved += 1
                batch.outstanding += 1
                batch.sealed = batch.reserved == maxBatch
                batches[slot] = batch
                if batch.sealed { filling = nil }
                return (slot, index)
            }
            guard let slot = freeSlots.popLast() else { return nil }
            batches[slot] = Batch(sequence: nextSequence, deadline: .now + batchDelay, sealed: maxBatch == 1)
            nextSequence += 1
            filling = maxBatch == 1 ? nil : slot
            return (slot, 0)
        }

        /// Gives positions to the waiting requests in the order they came, while there are any.
        mutating func admitWaiters() {
            while !slotWaiters.isEmpty {
                do {
                    guard let position = try reserve(newcomer: false) else { return }
                    slotWaiters.removeFirst().continuation.resume(returning: position)
                } catch {
                    failWaiting(with: error)
                    return
                }
            }
        }

        /// A request wrote its tensor (or failed to, with no `waiter`).
        mutating func prepared(slot: Int, index: Int, waiter: CheckedContinuation<InferenceReceipt, Error>?) {
            batches[slot]!.prepared += 1
            if let waiter {
                if let outcome = batches[slot]!.outcome {
                    waiter.resume(with: outcome)
                } else {
                    batches[slot]!.waiters.append(waiter)
                }
            } else {
                release(slot: slot)
            }
            enqueueIfComplete(slot)
        }

        /// A request is done with its position; the last one frees the slot.
        mutating func release(slot: Int) {
            guard batches[slot] != nil else { return }
            batches[slot]!.outstanding -= 1
            freeIfDone(slot)
        }

        /// A sealed batch that no request holds any more gives its slot back.
        private mutating func freeIfDone(_ slot: Int) {
            guard let batch = batches[slot], batch.outstanding == 0, batch.sealed else { return }
            batches[slot] = nil
            dispatchQueue.removeAll { $0 == slot }
            freeSlots.append(slot)
            admitWaiters()
        }

        /// Seals the filling batch once its delay has passed.
        mutating func sealExpiredBatch() {
            guard let slot = filling, let batch = batches[slot], batch.deadline <= .now || !acceptsRequests else { return }
            batches[slot]!.sealed = true
            filling = nil
            enqueueIfComplete(slot)
            freeIfDone(slot)
        }

        /// A sealed batch whose every position is written goes to the dispatch queue.
        private mutating func enqueueIfComplete(_ slot: Int) {
            guard let batch = batches[slot], batch.sealed, batch.prepared == batch.reserved, batch.outcome == nil,
                  !batch.waiters.isEmpty, !dispatchQueue.contains(slot) else { return }
            if inCrashLoop {
                finish(slot: slot, with: .failure(PoolError.unavailable(health.description)))
                return
            }
            batches[slot]!.queuedAt = monotonicNanoseconds()
            dispatchQueue.append(slot)
        }

        /// Queued batches fail when no worker can take them soon: the pool is stopping with
        /// no worker left, or every seat is in a crash loop.
        mutating func failQueuedWithoutCapacity() {
            guard !dispatchQueue.isEmpty else { return }
            let error: PoolError
            if inCrashLoop {
                error = .unavailable(health.description)
            } else if workers.isEmpty, respawnAt.isEmpty {
                error = .stopped
            } else {
                return
            }
            for slot in dispatchQueue { finish(slot: slot, with: .failure(error)) }
            dispatchQueue = []
        }

        /// Wakes every request of a batch with its outcome.
        mutating func finish(slot: Int, with outcome: Result<InferenceReceipt, Error>) {
            batches[slot]!.outcome = outcome
            for waiter in batches[slot]!.waiters { waiter.resume(with: outcome) }
            batches[slot]!.waiters = []
        }

        // MARK: Health

        mutating func becomeReadyIfAllSeated(seats: Int) {
            guard !started, startFailure == nil, workers.values.filter(\.ready).count == seats else { return }
            started = true
            for waiter in startWaiters { waiter.resume() }
            startWaiters = []
        }

        /// A crash loop before the pool was ever ready: the model or the machine is wrong, so
        /// `start()` fails with the reason rather than retrying for ever.
        mutating func failStart(_ reason: String) {
            guard !started, startFailure == nil else { return }
            startFailure = reason
            respawnAt = [:]
            for waiter in startWaiters { waiter.resume(throwing: PoolError.startFailed(reason)) }
            startWaiters = []
            failWaiting(with: PoolError.startFailed(reason))
        }

        mutating func beginStopping(deadline: ContinuousClock.Instant) {
            stopDeadline = min(stopDeadline ?? deadline, deadline)
            guard !stopRequested else { return }
            stopRequested = true
            failWaiting(with: PoolError.stopped)
            for waiter in startWaiters { waiter.resume(throwing: PoolError.stopped) }
            startWaiters = []
        }

        /// The graceful stop ran out of time: every request still waiting fails now.
        mutating func abandonBatches() {
            for slot in batches.keys where batches[slot]!.outcome == nil { finish(slot: slot, with: .failure(PoolError.stopped)) }
            dispatchQueue = []
        }

        /// Requests waiting for a slot, and batches not yet sent to a worker, fail now.
        private mutating func failWaiting(with error: Error) {
            for waiter in slotWaiters { waiter.continuation.resume(throwing: error) }
            slotWaiters = []
            if !stopRequested {
                for slot in dispatchQueue { finish(slot: slot, with: .failure(error)) }
                dispatchQueue = []
            }
        }

        // MARK: Polling

        /// The descriptors to watch, and how long to sleep before a batch deadline or respawn is due.
        func pollSet(wake: Int32) -> (watched: [(fd: Int32, role: WatchRole)], timeout: Int32) {
            var watched: [(fd: Int32, role: WatchRole)] = [(wake, .wake)]
            for worker in workers.values {
                watched.append((worker.channel.descriptor.rawValue, .control(worker.pid)))
                watched.append((worker.exitWatch.rawValue, .exit(worker.pid)))
            }
            var due = needsWorkers ? respawnAt.values.min() : nil
            if let slot = filling, let deadline = batches[slot]?.deadline { due = min(due ?? deadline, deadline) }
            for worker in workers.values {
                if let since = worker.busySince { due = min(due ?? since + worker.timeout, since + worker.timeout) }
            }
            if let stopDeadline { due = min(due ?? stopDeadline, stopDeadline) }
            guard let due else { return (watched, 1000) }
            return (watched, Int32(max(0, min(1000, ((due - .now).seconds * 1000).rounded(.up)))))
        }
    }
}
