import Classification
import Foundation
import Synchronization

/// How requests are offered.
public enum LoadModel: Sendable, Equatable {
    /// `concurrency` requests always in flight: each client sends its next as soon as its last
    /// is answered. Measures capacity; latency then reflects the queue the clients build.
    case closed(concurrency: Int)
    /// Requests arrive at `rate` per second (Poisson), whether or not earlier ones are done;
    /// latency counts from the scheduled arrival, so queueing shows honestly.
    case open(rate: Double)
}

/// How long a run lasts.
public struct RunLimits: Sendable, Equatable {
    /// Requests during warm-up are sent but not counted.
    public var warmUp: Duration
    public var duration: Duration
    /// Stop after this many measured requests instead (still bounded by `duration`).
    public var requests: Int?

    public init(warmUp: Duration, duration: Duration, requests: Int? = nil) {
        self.warmUp = warmUp
        self.duration = duration
        self.requests = requests
    }
}

/// A running count, for a progress line.
public struct RunProgress: Sendable {
    public var warmingUp: Bool
    /// Of the measured part, 0…1.
    public var fraction: Double
    public var completed: Int
    public var failed: Int
    public var imagesPerSecond: Double
}

/// What one run measured.
public struct RunMeasurement: Codable, Sendable {
    /// Requests answered within the measured time, and those that failed.
    public var requests: Int
    public var failed: Int
    /// The first few distinct failure messages, with how often each occurred.
    public var failures: [Failure]
    public var images: Int
    public var seconds: Double
    public var imagesPerSecond: Double
    /// Open loop: the rate asked for, and the rate at which requests actually went out.
    public var offeredRate: Double?
    public var achievedRate: Double?
    /// Open loop: how late requests went out after their scheduled arrival; small when the
    /// load generator kept up (its lateness is still counted in `latency`).
    public var sendLag: LatencySummary?
    /// Open loop: arrivals dropped because `maxOutstanding` requests were already waiting.
    public var dropped: Int
    /// Open loop: what the queueing models predict for this rate, workers and inference times.
    public var queueing: [QueueingPrediction]?
    /// Per request, from being handed over (open loop: from its scheduled arrival) to its answer.
    public var latency: LatencySummary
    /// Per request, the time in each stage the target reports (absent ones it cannot see).
    public var stages: [String: LatencySummary]
    public var resources: ResourceUsage
    /// The images/s the front could sustain on its CPUs if inference took no time: its CPUs ÷
    /// its CPU time per image. Beside `imagesPerSecond` it says which side limits: far above
    /// it, the workers; close to it, the front. Nil when the front's CPU time is not known.
    public var frontBoundImagesPerSecond: Double?
    /// A mixed workload's models, each measured apart over the same time; nil for one model.
    public var models: [ModelMeasurement]?
}

/// One model's share of a run that spread its requests over several.
public struct ModelMeasurement: Codable, Sendable {
    public var model: String
    public var requests: Int
    public var failed: Int
    public var imagesPerSecond: Double
    public var latency: LatencySummary
}

/// A kind of failure and how often it occurred.
public struct Failure: Codable, Sendable, Equatable {
    public var message: String
    public var count: Int
}

/// Drives a target with a workload under a load model and measures it.
public enum LoadRunner {
    /// Open loop: at most this many requests are outstanding; later arrivals are counted as dropped.
    public static let maxOutstanding = 4096

    public static func run(
        target: some BenchTarget, workload: Workload, load: LoadModel, limits: RunLimits,
        progress: @escaping @Sendable (RunProgress) -> Void = { _ in }
    ) async -> RunMeasurement {
        let clock = ContinuousClock()
        let start = clock.now
        let tally = Tally(
            measureFrom: start + limits.warmUp, until: start + limits.warmUp + limits.duration, requests: limits.requests, models: target.models)
        let monitor = ResourceMonitor(serving: { target.servingProcesses() })
        let sampling = Task { await monitor.run() }
        let reporting = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                progress(tally.progress(now: clock.now, imagesPerRequest: target.imagesPerRequest))
            }
        }
        let measuring = Task {
            try? await clock.sleep(until: start + limits.warmUp)
            monitor.beginMeasuring()
        }
        switch load {
        case .closed(let concurrency):
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        while let ticket = tally.issue(now: clock.now) {
                            await send(ticket, from: clock.now, to: target, workload: workload, tally: tally)
                        }
                    }
                }
            }
        case .open(let rate):
            await withTaskGroup(of: Void.self) { group in
                var arrivals = PoissonArrivals(rate: rate)
                var scheduled = start
                while true {
                    scheduled += .seconds(arrivals.next()!)
                    if scheduled > clock.now { try? await clock.sleep(until: scheduled, tolerance: .microseconds(200)) }
                    guard let ticket = tally.issue(now: scheduled) else { break }
                    guard tally.admit(ticket, limit: maxOutstanding) else { continue }
                    group.addTask { [scheduled] in
                        await send(ticket, from: scheduled, to: target, workload: workload, tally: tally)
                    }
                }
            }
        }
        await measuring.value
        reporting.cancel()
        sampling.cancel()
        await reporting.value
        var finished = tally.progress(now: clock.now, imagesPerRequest: target.imagesPerRequest)
        finished.fraction = 1
        progress(finished)
        let offered: Double? = if case .open(let rate) = load { rate } else { nil }
        return tally.measurement(
            imagesPerRequest: target.imagesPerRequest, offeredRate: offered, window: limits.warmUp.seconds...(limits.warmUp + limits.duration).seconds
        ) { monitor.finish(seconds: $0) }
    }

    private static func send(
        _ ticket: Tally.Ticket, from start: ContinuousClock.Instant, to target: some BenchTarget, workload: Workload, tally: Tally
    ) async {
        tally.sent(ticket, scheduled: start)
        let items = (0..<target.imagesPerRequest).map { workload.item(ticket.index * target.imagesPerRequest + $0) }
        let model = target.model(ofRequest: ticket.index)
        do {
            let stages = try await target.send(items, request: ticket.index)
            tally.answered(ticket, latency: ContinuousClock.now - start, stages: stages, model: model)
        } catch {
            tally.failed(ticket, error, model: model)
        }
    }
}

/// The shared counts of one run: which requests are measured, and what they measured.
private final class Tally: Sendable {
    struct Ticket: Sendable {
        let index: Int
        let measured: Bool
    }

    /// One model's counts in a mixed workload.
    private struct ModelCounts {
        var completed = 0
        var failed = 0
        var latency = LatencyRecorder()
    }

    private struct State {
        var issued = 0
        var measuredIssued = 0
        var outstanding = 0
        var completed = 0
        var failed = 0
        var dropped = 0
        var failures: [String: Int] = [:]
        var latency = LatencyRecorder()
        var stages: [Stage: LatencyRecorder] = [:]
        var lastAnswer: ContinuousClock.Instant?
        var sentMeasured = 0
        var lastSend: ContinuousClock.Instant?
        var sendLag = LatencyRecorder()
        var models: [ModelCounts]
    }

    let measureFrom: ContinuousClock.Instant
    let until: ContinuousClock.Instant
    let requests: Int?
    private let models: [String]
    private let state: Mutex<State>

    init(measureFrom: ContinuousClock.Instant, until: ContinuousClock.Instant, requests: Int?, models: [String]) {
        self.measureFrom = measureFrom
        self.until = until
        self.requests = requests
        self.models = models
        state = Mutex(State(models: Array(repeating: ModelCounts(), count: models.count)))
    }

    /// The next request to send at `now`, or nil once the run is over.
    func issue(now: ContinuousClock.Instant) -> Ticket? {
        state.withLock { state in
            guard now < until, state.measuredIssued < requests ?? .max else { return nil }
            defer { state.issued += 1 }
            let measured = now >= measureFrom
            if measured { state.measuredIssued += 1 }
            return Ticket(index: state.issued, measured: measured)
        }
    }

    /// Open loop: whether an arrival may go out, or is dropped because too many wait already.
    func admit(_ ticket: Ticket, limit: Int) -> Bool {
        state.withLock { state in
            guard state.outstanding < limit else {
                if ticket.measured { state.dropped += 1 }
                return false
            }
            state.outstanding += 1
            return true
        }
    }

    /// A request going out now, for its scheduled time.
    func sent(_ ticket: Ticket, scheduled: ContinuousClock.Instant) {
        guard ticket.measured else { return }
        let now = ContinuousClock.now
        state.withLock { state in
            state.sentMeasured += 1
            state.lastSend = max(state.lastSend ?? now, now)
            state.sendLag.record(seconds: (now - scheduled).seconds)
        }
    }

    func answered(_ ticket: Ticket, latency: Duration, stages: StageTimes, model: Int?) {
        let now = ContinuousClock.now
        state.withLock { state in
            state.outstanding = max(0, state.outstanding - 1)
            guard ticket.measured else { return }
            state.completed += 1
            state.latency.record(seconds: latency.seconds)
            if let model {
                state.models[model].completed += 1
                state.models[model].latency.record(seconds: latency.seconds)
            }
            for (stage, seconds) in stages.seconds { state.stages[stage, default: LatencyRecorder()].record(seconds: seconds) }
            state.lastAnswer = max(state.lastAnswer ?? now, now)
        }
    }

    func failed(_ ticket: Ticket, _ error: Error, model: Int?) {
        state.withLock { state in
            state.outstanding = max(0, state.outstanding - 1)
            guard ticket.measured else { return }
            state.failed += 1
            if let model { state.models[model].failed += 1 }
            let message = "\(error)"
            if state.failures[message] != nil || state.failures.count < 5 { state.failures[message, default: 0] += 1 }
        }
    }

    func progress(now: ContinuousClock.Instant, imagesPerRequest: Int) -> RunProgress {
        state.withLock { state in
            let elapsed = (now - measureFrom).seconds
            let total = (until - measureFrom).seconds
            var fraction = total > 0 ? elapsed / total : 1
            if let requests { fraction = max(fraction, Double(state.completed + state.failed) / Double(max(requests, 1))) }
            return RunProgress(
                warmingUp: now < measureFrom, fraction: min(1, max(0, fraction)), completed: state.completed, failed: state.failed,
                imagesPerSecond: elapsed > 0 ? Double(state.completed * imagesPerRequest) / elapsed : 0)
        }
    }

    /// `window`: the measured seconds from the start of the run, for the queueing models.
    func measurement(imagesPerRequest: Int, offeredRate: Double?, window: ClosedRange<Double>, resources: (Double) -> ResourceUsage) -> RunMeasurement {
        let snapshot = state.withLock { $0 }
        // Throughput over the time answers kept coming.
        let seconds = max(((snapshot.lastAnswer ?? until) - measureFrom).seconds, 1e-9)
        let images = snapshot.completed * imagesPerRequest
        let sendingSeconds = ((snapshot.lastSend ?? until) - measureFrom).seconds
        let usage = resources(seconds)
        let queueing = offeredRate.flatMap { rate in
            snapshot.stages[.inference].flatMap { inference in
                QueueingModel.predict(
                    rate: rate, servers: usage.workers.count, serviceTimes: inference.distribution,
                    window: window)
            }
        }
        return RunMeasurement(
            requests: snapshot.completed, failed: snapshot.failed,
            failures: snapshot.failures.map { Failure(message: $0.key, count: $0.value) }.sorted { $0.count > $1.count }, images: images, seconds: seconds,
            imagesPerSecond: Double(images) / seconds, offeredRate: offeredRate,
            achievedRate: offeredRate.map { _ in sendingSeconds > 0 ? Double(snapshot.sentMeasured) / sendingSeconds : 0 },
            sendLag: offeredRate.map { _ in snapshot.sendLag.summary },
            dropped: snapshot.dropped, queueing: queueing, latency: snapshot.latency.summary,
            stages: Dictionary(uniqueKeysWithValues: snapshot.stages.map { ($0.key.rawValue, $0.value.summary) }),
            resources: usage,
            frontBoundImagesPerSecond: usage.front.flatMap { front in
                guard let cpus = front.cpus, front.cpuSeconds > 0, images > 0 else { return nil }
                return Double(cpus) * Double(images) / front.cpuSeconds
            },
            models: models.isEmpty ? nil : zip(models, snapshot.models).map { name, counts in
                ModelMeasurement(
                    model: name, requests: counts.completed, failed: counts.failed,
                    imagesPerSecond: Double(counts.completed * imagesPerRequest) / seconds, latency: counts.latency.summary)
            })
    }
}
