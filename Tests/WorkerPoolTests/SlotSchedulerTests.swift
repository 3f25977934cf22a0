import EngineInterface
import Testing
@testable import WorkerPool

/// The scheduler driven by events alone, no process or socket: each test sends what the pool
/// would (a request arrives, a worker replies, time passes) and checks what it decides.
struct SchedulerHarness {
    typealias Event = SlotScheduler.Event
    typealias Action = SlotScheduler.Action

    var scheduler: SlotScheduler
    var now: Nanoseconds = 1_000_000_000

    init(slots: Int = 4, seats: Int = 2, maxBatch: Int = 1, delay: Duration = .milliseconds(2), depth: Int = 2, maxWaiting: Int = 256,
         crashLimit: Int = 5, workerTimeout: Duration? = nil, recycleAfter: Int? = nil) {
        scheduler = SlotScheduler(
            .init(
                slots: slots, seats: seats, policy: DynamicBatching(maxBatch: maxBatch, delay: delay), queueDepth: depth, maxWaiting: maxWaiting,
                crashLimit: crashLimit, liveness: .seconds(60), workerTimeout: workerTimeout, recycleAfter: recycleAfter),
            now: now)
    }

    /// Sends `event` once `elapsed` has passed since the last one.
    @discardableResult
    mutating func send(_ event: Event, after elapsed: Duration = .zero) -> [Action] {
        now += elapsed.nanoseconds
        return scheduler.handle(event, at: now)
    }

    /// Starts every seat with workers 101, 102, … and makes them ready; returns their pids.
    @discardableResult
    mutating func startWorkers(warmUp: Duration = .milliseconds(10)) -> [Int32] {
        let spawns = send(.tick).filter { if case .spawn = $0 { true } else { false } }
        let pids = spawns.indices.map { Int32(101 + $0) }
        for (seat, pid) in pids.enumerated() { send(.spawned(seat: seat, pid: pid)) }
        for pid in pids { send(.ready(pid: pid, engine: nil, warmUp: warmUp)) }
        return pids
    }

    /// A request that arrives, gets its position at once and writes its sample.
    mutating func arriveAndWrite(_ ticket: SlotScheduler.Ticket) -> [Action] {
        let granted = send(.arrive(ticket))
        return granted + send(.written(ticket))
    }

    static func runs(_ actions: [Action]) -> [(worker: Int32, slot: Int, batch: Int, sequence: UInt64)] {
        actions.compactMap { if case .run(let worker, let slot, let batch, let sequence) = $0 { (worker, slot, batch, sequence) } else { nil } }
    }

    static func grants(_ actions: [Action]) -> [SlotScheduler.Ticket: SlotScheduler.Position] {
        Dictionary(uniqueKeysWithValues: actions.compactMap { if case .grant(let ticket, let position) = $0 { (ticket, position) } else { nil } })
    }

    static func completions(_ actions: [Action]) -> [([SlotScheduler.Ticket], Result<SlotScheduler.BatchReport, PoolError>)] {
        actions.compactMap { if case .complete(let tickets, let outcome) = $0 { (tickets, outcome) } else { nil } }
    }

    static func kills(_ actions: [Action]) -> [Int32] { actions.compactMap { if case .kill(let pid) = $0 { pid } else { nil } } }
    static func stops(_ actions: [Action]) -> [Int32] { actions.compactMap { if case .stopWorker(let pid) = $0 { pid } else { nil } } }
    static func spawns(_ actions: [Action]) -> [Int] { actions.compactMap { if case .spawn(let seat) = $0 { seat } else { nil } } }

    /// The worker's successful reply for a run.
    mutating func reply(_ run: (worker: Int32, slot: Int, batch: Int, sequence: UInt64), after elapsed: Duration = .milliseconds(5)) -> [Action] {
        send(.replied(pid: run.worker, slot: run.slot, sequence: run.sequence, result: .success(.init(inferenceNanoseconds: 1000))), after: elapsed)
    }
}

@Suite struct SlotSchedulerTests {
    typealias H = SchedulerHarness

    @Test func theStartSpawnsEverySeatAndEndsWhenAllAreReady() {
        var pool = H(seats: 2)
        #expect(H.spawns(pool.send(.tick)) == [0, 1])
        #expect(H.spawns(pool.send(.tick)).isEmpty, "a seat being spawned is not spawned twice")
        pool.send(.spawned(seat: 0, pid: 7))
        pool.send(.spawned(seat: 1, pid: 8))
        #expect(!pool.send(.ready(pid: 7, engine: nil, warmUp: .zero)).contains(.started))
        #expect(pool.send(.ready(pid: 8, engine: nil, warmUp: .zero)).contains(.started))
        #expect(pool.scheduler.phase == .serving && pool.scheduler.canServe)
    }

    @Test func requestsTakeFreedSlotsInTheOrderTheyCame() {
        var pool = H(slots: 1, seats: 1)
        let worker = pool.startWorkers()[0]
        let first = pool.arriveAndWrite(1)
        #expect(H.grants(first)[1] == .init(slot: 0, index: 0))
        let run = try! #require(H.runs(first).first)
        #expect(run.worker == worker && run.batch == 1)
        #expect(pool.send(.arrive(2)).isEmpty && pool.send(.arrive(3)).isEmpty, "both wait in line")
        #expect(H.completions(pool.reply(run)).map(\.0) == [[1]])
        #expect(H.grants(pool.send(.released(1))).keys.sorted() == [2], "the freed slot goes to the first in line")
        #expect(pool.send(.arrive(4)).isEmpty, "a newcomer waits behind the line")
        let second = H.runs(pool.send(.written(2)))
        #expect(second.count == 1 && second.first?.slot == 0 && second.first?.sequence != run.sequence)
    }

    @Test func aFullLineRefusesAndALeaverGetsNothing() {
        var pool = H(slots: 1, seats: 1, maxWaiting: 1)
        pool.startWorkers()
        _ = pool.arriveAndWrite(1)
        #expect(pool.send(.arrive(2)).isEmpty)
        guard case .refuse(3, .overloaded)? = pool.send(.arrive(3)).first else {
            Issue.record("the third request should be refused")
            return
        }
        #expect(pool.send(.leaveLine(2)) == [.leave(2)])
        #expect(pool.send(.leaveLine(2)).isEmpty, "leaving twice does nothing")
    }

    @Test func aWorkerLostAfterAFailedStartIsKilledWithoutASecondError() {
        var pool = H(seats: 2)
        pool.send(.tick)
        pool.send(.spawned(seat: 0, pid: 101))
        pool.send(.spawned(seat: 1, pid: 102))
        pool.send(.startFailed(pid: 101, reason: "cannot compile"))
        let actions = pool.send(.misbehaved(pid: 102, reason: "its control socket failed: Broken pipe"))
        #expect(H.kills(actions) == [102])
        #expect(!actions.contains { if case .log(.error, _) = $0 { true } else { false } }, "\(actions)")
    }

    @Test func aBatchSealsAtOnceWhileAWorkerIsIdle() {
        var pool = H(slots: 4, seats: 1, maxBatch: 4, delay: .milliseconds(2))
        pool.startWorkers()
        let runs = H.runs(pool.arriveAndWrite(1))
        #expect(runs.count == 1 && runs[0].batch == 1, "an idle worker takes a lone request without waiting for company")
    }

    @Test func aBatchStillBeingWrittenHasTheIdleWorkerSpokenFor() throws {
        var pool = H(slots: 4, seats: 1, maxBatch: 4, delay: .seconds(1))
        pool.startWorkers()
        pool.send(.arrive(1))
        pool.send(.arrive(2))
        pool.send(.arrive(3))
        let first = try #require(H.runs(pool.send(.written(1))).first)
        #expect(first.batch == 1, "the first request took the idle worker at once")
        #expect(H.runs(pool.send(.written(2))).isEmpty && H.runs(pool.send(.written(3))).isEmpty, "the others wait for company, not beside it")
        let second = H.runs(pool.reply(first))
        #expect(second.count == 1 && second[0].batch == 2)
    }

    @Test func whileEveryWorkerIsBusyABatchFillsUntilItsDelayOrFull() throws {
        var pool = H(slots: 4, seats: 1, maxBatch: 4, delay: .milliseconds(2), depth: 2)
        pool.startWorkers()
        let busy = try #require(H.runs(pool.arriveAndWrite(1)).first)
        let opened = pool.send(.arrive(2))
        #expect(opened.contains(.wake), "a filling batch sets a deadline the supervisor must wake for")
        pool.send(.arrive(3))
        pool.send(.written(2))
        pool.send(.written(3))
        #expect(H.runs(pool.send(.tick, after: .milliseconds(1))).isEmpty, "still filling")
        let sealed = H.runs(pool.send(.tick, after: .milliseconds(1)))
        #expect(sealed.count == 1 && sealed[0].batch == 2 && sealed[0].worker == busy.worker, "queued behind the running batch")
        // Four arrivals fill the next batch: it seals without waiting.
        for ticket in 4...7 { pool.send(.arrive(SlotScheduler.Ticket(ticket))) }
        var runs: [(worker: Int32, slot: Int, batch: Int, sequence: UInt64)] = []
        runs += H.runs(pool.reply(busy))
        for ticket in 4...7 { runs += H.runs(pool.send(.written(SlotScheduler.Ticket(ticket)))) }
        #expect(runs.count == 1 && runs[0].batch == 4)
    }

    @Test func aWorkerThatFreesUpSealsTheFillingBatch() throws {
        var pool = H(slots: 4, seats: 1, maxBatch: 4, delay: .seconds(1), depth: 1)
        pool.startWorkers()
        let busy = try #require(H.runs(pool.arriveAndWrite(1)).first)
        #expect(H.runs(pool.arriveAndWrite(2)).isEmpty && H.runs(pool.arriveAndWrite(3)).isEmpty, "the only worker is busy")
        let next = H.runs(pool.reply(busy, after: .milliseconds(5)))
        #expect(next.count == 1 && next[0].batch == 2, "sealed and run the moment the worker is free, long before its delay")
    }

    @Test func batchesGoToTheLeastLoadedReadyWorker() {
        var pool = H(slots: 6, seats: 2, depth: 2)
        let workers = pool.startWorkers()
        let runs = (1...4).flatMap { H.runs(pool.arriveAndWrite(SlotScheduler.Ticket($0))) }
        #expect(runs.map(\.worker) == [workers[0], workers[1], workers[0], workers[1]])
        #expect(H.runs(pool.arriveAndWrite(5)).isEmpty, "each worker holds at most two batches")
        #expect(pool.scheduler.queuedBatches == 1)
        #expect(H.runs(pool.reply(runs[1])).map(\.worker) == [workers[1]], "the queued batch goes to the worker that freed up")
    }

    @Test func aDeadWorkersBatchIsRetriedOnceElsewhereThenFails() throws {
        var pool = H(slots: 2, seats: 2)
        let workers = pool.startWorkers()
        let run = try #require(H.runs(pool.arriveAndWrite(1)).first)
        let retried = pool.send(.exited(pid: run.worker, status: "signal 9"))
        let second = try #require(H.runs(retried).first, "retried at once on the other worker")
        #expect(second.worker != run.worker && second.slot == run.slot && second.sequence == run.sequence)
        #expect(retried.contains { if case .log(.error, let text) = $0 { text.contains("exited unexpectedly (signal 9)") } else { false } })
        let failed = H.completions(pool.send(.exited(pid: second.worker, status: "signal 11")))
        #expect(failed.count == 1 && failed[0].0 == [1])
        #expect(failed.first.map { $0.1 == .failure(.inferenceFailed("the batch crashed two workers")) } == true)
        #expect(pool.scheduler.restarts == 2 && workers.count == 2)
        #expect(H.spawns(pool.send(.tick, after: .milliseconds(100))) == [0, 1], "both seats are refilled after their back-off")
    }

    @Test func theWatchdogKillsAWorkerPastItsTimeout() throws {
        var pool = H(slots: 2, seats: 2)
        pool.startWorkers(warmUp: .seconds(1))  // ten times the warm-up: 10 s
        let run = try #require(H.runs(pool.arriveAndWrite(1)).first)
        #expect(H.kills(pool.send(.tick, after: .seconds(9))).isEmpty)
        #expect(H.kills(pool.send(.tick, after: .seconds(1))) == [run.worker])
        #expect(H.kills(pool.send(.tick)).isEmpty, "killed once")
        let retry = try #require(H.runs(pool.send(.exited(pid: run.worker, status: "signal 9"))).first)
        pool.send(.tick, after: .seconds(10))
        let outcome = H.completions(pool.send(.exited(pid: retry.worker, status: "signal 9")))
        #expect(outcome.first.map { $0.1 == .failure(.timedOut("the batch outran the worker timeout on two workers")) } == true)
    }

    @Test func workersThatNeverStartFailTheStartAfterTheCrashLimit() {
        var pool = H(seats: 1, crashLimit: 3)
        var failed: [SlotScheduler.Action] = []
        for attempt in 0..<3 {
            #expect(H.spawns(pool.send(.tick, after: .seconds(10))) == [0], "attempt \(attempt)")
            pool.send(.spawned(seat: 0, pid: Int32(200 + attempt)))
            failed = pool.send(.exited(pid: Int32(200 + attempt), status: "exit status 2"))
        }
        #expect(failed.contains(.startFailed(.startFailed("3 workers in a row failed to start; last: worker 202 exit status 2"))))
        #expect(H.spawns(pool.send(.tick, after: .seconds(10))).isEmpty, "a failed start respawns nothing")
        guard case .refuse(9, .startFailed)? = pool.send(.arrive(9)).first else {
            Issue.record("a request to a pool whose start failed is refused")
            return
        }
    }

    @Test func aWorkersStartFailureStopsTheStartAtOnce() {
        var pool = H(seats: 2)
        pool.send(.tick)
        pool.send(.spawned(seat: 0, pid: 5))
        pool.send(.spawned(seat: 1, pid: 6))
        pool.send(.arrive(1))
        #expect(pool.send(.startFailed(pid: 5, reason: "model.onnx cannot run at bf16")).contains(.startFailed(.startFailed("model.onnx cannot run at bf16"))))
        let exits = pool.send(.exited(pid: 5, status: "exit status 3")) + pool.send(.exited(pid: 6, status: "signal 9"))
        #expect(!exits.contains { if case .log = $0 { true } else { false } }, "the start's error says why; no crash lines")
        #expect(pool.scheduler.restarts == 0)
    }

    @Test func aPoolInACrashLoopRefusesWhileItKeepsRetrying() throws {
        var pool = H(slots: 2, seats: 1, crashLimit: 2)
        var pid = pool.startWorkers()[0]
        for _ in 0..<2 {
            pool.send(.exited(pid: pid, status: "signal 9"))
            #expect(H.spawns(pool.send(.tick, after: .seconds(10))) == [0])
            pid += 1
            pool.send(.spawned(seat: 0, pid: pid))
        }
        guard case .refuse(1, .unavailable(let reason))? = pool.send(.arrive(1)).first else {
            Issue.record("no worker is ready and the seat keeps crashing: refused")
            return
        }
        #expect(reason.contains("2 in a row"), "\(reason)")
        pool.send(.exited(pid: pid, status: "signal 9"))
        #expect(H.spawns(pool.send(.tick, after: .seconds(10))) == [0], "it never stops retrying once it has served")
        pool.send(.spawned(seat: 0, pid: pid + 1))
        pool.send(.ready(pid: pid + 1, engine: nil, warmUp: .zero))
        #expect(H.grants(pool.send(.arrive(2)))[2] != nil && pool.scheduler.health(at: pool.now) == .ready)
    }

    @Test func aStopDrainsWhatIsInHandThenStopsTheWorkers() throws {
        var pool = H(slots: 2, seats: 2)
        let workers = pool.startWorkers()
        let run = try #require(H.runs(pool.arriveAndWrite(1)).first)
        pool.send(.arrive(2))
        let stopping = pool.send(.stop(deadline: pool.now + 10_000_000_000))
        #expect(H.stops(stopping).isEmpty, "a batch is still running")
        guard case .refuse(3, .stopped)? = pool.send(.arrive(3)).first else {
            Issue.record("a stopping pool takes no new request")
            return
        }
        #expect(H.completions(pool.reply(run)).map(\.0) == [[1]])
        let second = try #require(H.runs(pool.send(.written(2))).first, "what a stopping pool took in, it still runs")
        let last = pool.reply(second)
        #expect(H.completions(last).map(\.0) == [[2]])
        #expect(Set(H.stops(last)) == Set(workers), "nothing left in hand: every worker is told to stop")
        #expect(!pool.send(.exited(pid: workers[0], status: "exit status 0")).contains(.stopped))
        #expect(pool.send(.exited(pid: workers[1], status: "exit status 0")).contains(.stopped))
        #expect(pool.scheduler.phase == .stopped)
    }

    @Test func aStopThatRunsOutOfTimeCutsBatchesOffAndKillsTheWorkers() throws {
        var pool = H(slots: 2, seats: 1)
        let worker = pool.startWorkers()[0]
        _ = try #require(H.runs(pool.arriveAndWrite(1)).first)
        pool.send(.arrive(2))  // still writing its sample when the time runs out
        pool.send(.stop(deadline: pool.now + 1_000_000_000))
        let cut = pool.send(.tick, after: .seconds(1))
        #expect(H.completions(cut).map(\.0) == [[1]])
        #expect(H.completions(cut).first.map { $0.1 == .failure(.stopped) } == true)
        #expect(H.completions(pool.send(.written(2))).map(\.0) == [[2]], "a sample written after the cut is answered at once")
        pool.send(.released(1))
        pool.send(.released(2))
        #expect(H.kills(pool.send(.tick)) == [worker], "the worker never read its stop: killed at the deadline")
        #expect(pool.send(.exited(pid: worker, status: "signal 9")).contains(.stopped))
    }

    @Test func aWorkerThatServedItsShareIsReplacedWithoutCountingACrash() {
        var pool = H(slots: 2, seats: 2, recycleAfter: 2)
        let workers = pool.startWorkers()
        for ticket in 1...4 {
            let actions = pool.arriveAndWrite(SlotScheduler.Ticket(ticket))
            for run in H.runs(actions) { pool.reply(run) }
            pool.send(.released(SlotScheduler.Ticket(ticket)))
        }
        let recycled = H.stops(pool.send(.tick))
        #expect(recycled.count == 1, "one at a time, never both")
        let pid = try! #require(recycled.first)
        #expect(workers.contains(pid))
        pool.send(.exited(pid: pid, status: "exit status 0"))
        #expect(pool.scheduler.restarts == 0 && H.spawns(pool.send(.tick)).count == 1)
    }

    @Test func aReplyForABatchTheWorkerWasNotRunningCondemnsIt() {
        var pool = H(slots: 2, seats: 1)
        let worker = pool.startWorkers()[0]
        let actions = pool.send(.replied(pid: worker, slot: 1, sequence: 42, result: .success(.init())))
        #expect(H.kills(actions) == [worker])
        #expect(pool.scheduler.canServe == false)
    }

    @Test func samplesThatCouldNotBeWrittenFreeTheirSlot() {
        var pool = H(slots: 1, seats: 1)
        pool.startWorkers()
        pool.send(.arrive(1))
        #expect(pool.send(.arrive(2)).isEmpty)
        #expect(H.grants(pool.send(.writeFailed(1)))[2] == .init(slot: 0, index: 0), "the slot passes to the next in line, nothing ran")
    }

    @Test func aFallbackIsLoggedOnceForThePool() {
        var pool = H(seats: 2)
        pool.send(.tick)
        pool.send(.spawned(seat: 0, pid: 1))
        pool.send(.spawned(seat: 1, pid: 2))
        let fallback = PrecisionFallback(from: "bf16", to: "f32", reason: "No suitable implementations")
        let engine = EngineDescription(kind: .openvino, precision: "int8+f32", threads: 1, version: "x", fallback: fallback)
        let logs = [pool.send(.ready(pid: 1, engine: engine, warmUp: .zero)), pool.send(.ready(pid: 2, engine: engine, warmUp: .zero))].map {
            $0.filter { if case .log(.warning, _) = $0 { true } else { false } }.count
        }
        #expect(logs == [1, 0])
    }
}
