import Glibc
import InferenceEngines
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
            /// What the worker's engine runs at, from its ready message (e.g. "bf16", "int8+bf16").
            var precision: String?
            var stopping = false
            /// Slots sent to this worker, in the order it answers them.
            var inFlight: [Int] = []
            var served = 0
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

        var health: PoolStatus.Health = .starting
        var supervising = false
        var stopRequested = false
        var workers: [Int32: Worker] = [:]
        var respawnAt: [Int: ContinuousClock.Instant] = [:]
        var crashes: [ContinuousClock.Instant] = []
        var consecutiveCrashes: [Int: Int] = [:]
        var restarts = 0
        var batches: [Int: Batch] = [:]
        var freeSlots: [Int]
        var filling: Int?
        var dispatchQueue: [Int] = []
        var slotWaiters: [(ticket: UInt64, continuation: CheckedContinuation<Void, Error>)] = []
        var startWaiters: [CheckedContinuation<Void, Error>] = []
        var nextSequence: UInt64 = 1
        var nextTicket: UInt64 = 0

        init(slotCount: Int, seats: Int) {
            freeSlots = Array((0..<slotCount).reversed())
        }

        var acceptsRequests: Bool { health == .starting || health == .ready }
        /// Workers are still needed: the pool serves, or a stopping pool has batches queued.
        var needsWorkers: Bool { !stopRequested || !dispatchQueue.isEmpty }

        // MARK: Requests

        /// A position in the filling batch, or a new batch in a free slot; nil when every slot is taken.
        mutating func reserve(maxBatch: Int, delay: Duration) throws -> (slot: Int, index: Int)? {
            switch health {
            case .unhealthy(let reason): throw PoolError.unhealthy(reason)
            case .stopping, .stopped: throw PoolError.stopped
            case .starting, .ready: break
            }
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
            batches[slot] = Batch(sequence: nextSequence, deadline: .now + delay, sealed: maxBatch == 1)
            nextSequence += 1
            filling = maxBatch == 1 ? nil : slot
            return (slot, 0)
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
            if !slotWaiters.isEmpty { slotWaiters.removeFirst().continuation.resume() }
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
            if case .unhealthy(let reason) = health {
                finish(slot: slot, with: .failure(PoolError.unhealthy(reason)))
                return
            }
            batches[slot]!.queuedAt = monotonicNanoseconds()
            dispatchQueue.append(slot)
        }

        /// Queued batches fail when no worker is alive and none is coming: they would wait forever.
        mutating func failQueuedWithoutCapacity() {
            guard workers.isEmpty, respawnAt.isEmpty, !dispatchQueue.isEmpty else { return }
            let error: PoolError = if case .unhealthy(let reason) = health { .unhealthy(reason) } else { .stopped }
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
            guard health == .starting, workers.values.filter(\.ready).count == seats else { return }
            health = .ready
            for waiter in startWaiters { waiter.resume() }
            startWaiters = []
        }

        /// Stops replacing workers and fails whatever is waiting: the pool cannot serve.
        mutating func becomeUnhealthy(_ reason: String) {
            guard acceptsRequests else { return }
            health = .unhealthy(reason)
            respawnAt = [:]
            for waiter in startWaiters { waiter.resume(throwing: PoolError.startFailed(reason)) }
            startWaiters = []
            failWaiting(with: PoolError.unhealthy(reason))
        }

        mutating func beginStopping() {
            stopRequested = true
            if acceptsRequests { health = .stopping }
            failWaiting(with: PoolError.stopped)
            for waiter in startWaiters { waiter.resume(throwing: PoolError.stopped) }
            startWaiters = []
        }

        /// Requests waiting for a slot, and batches not yet sent to a worker, fail now.
        private mutating func failWaiting(with error: PoolError) {
            for waiter in slotWaiters { waiter.continuation.resume(throwing: error) }
            slotWaiters = []
            if health != .stopping {
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
            guard let due else { return (watched, 1000) }
            return (watched, Int32(max(0, min(1000, ((due - .now).seconds * 1000).rounded(.up)))))
        }
    }
}
