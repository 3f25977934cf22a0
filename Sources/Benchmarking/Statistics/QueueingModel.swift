/// What queueing theory predicts for an open-loop run, to set beside what was measured: Poisson
/// arrivals at the offered rate to `servers` workers, first come first served, each request
/// holding one worker for its service time. Two models, both simulated, and for a bench run on
/// that run's own arrival times (the load generator's seeded sequence), so that a burst the
/// run happened to offer is in the prediction too and a p99 from a few hundred requests is
/// compared like with like:
///
/// - M/D/c: every service takes the measured mean. The yardstick for the serving path: latency
///   above it comes from variance, the front, or the path's own waits.
/// - M/G/c: services drawn from the measured distribution of inference times (the median of
///   101 draws). What the engine's own variance explains; latency above this is the server's.
public struct QueueingPrediction: Codable, Sendable, Equatable {
    /// "M/D/2", "M/G/2", …
    public var model: String
    public var servers: Int
    /// Mean service time, milliseconds.
    public var serviceMilliseconds: Double
    /// Offered load per server: rate × mean service ÷ servers.
    public var utilization: Double
    /// Response time (wait + service), milliseconds.
    public var p50: Double
    public var p99: Double
}

public enum QueueingModel {
    /// Arrivals simulated without a window: the queue's steady state.
    static let steadyStateArrivals = 200_000
    static let draws = 101

    /// M/D/c and M/G/c for `rate` requests/s to `servers`, with service times in seconds drawn
    /// from `serviceTimes` (value, how often it was seen). With `window` (seconds from the start
    /// of a bench run: its warm-up end and its end), the arrivals are the run's own and only
    /// those inside the window count; without, the steady state. Nil without service times,
    /// or when the load is at or above capacity: the queue then grows without bound.
    public static func predict(
        rate: Double, servers: Int, serviceTimes: [(seconds: Double, count: Int)], window: ClosedRange<Double>? = nil
    ) -> [QueueingPrediction]? {
        let total = serviceTimes.reduce(0) { $0 + $1.count }
        guard rate > 0, servers >= 1, total > 0 else { return nil }
        let mean = serviceTimes.reduce(0) { $0 + $1.seconds * Double($1.count) } / Double(total)
        let utilization = rate * mean / Double(servers)
        guard utilization < 1 else { return nil }
        let arrivals = arrivalTimes(rate: rate, window: window)
        // Inverse of the empirical distribution: a uniform draw picks a recorded value by its weight.
        var cumulative: [(upTo: Int, seconds: Double)] = []
        var running = 0
        for (seconds, count) in serviceTimes where count > 0 {
            running += count
            cumulative.append((running, seconds))
        }
        let measured = { (draw: UInt64) -> Double in
            let rank = Int(draw % UInt64(total))
            var low = 0, high = cumulative.count - 1
            while low < high {
                let middle = (low + high) / 2
                if cumulative[middle].upTo > rank { high = middle } else { low = middle + 1 }
            }
            return cumulative[low].seconds
        }
        func percentiles(_ service: (UInt64) -> Double) -> (p50: Double, p99: Double) {
            let times = simulate(arrivals: arrivals, servers: servers, service: service).sorted()
            let at = { (p: Double) in times[min(times.count - 1, Int(p * Double(times.count)))] * 1000 }
            return (at(0.50), at(0.99))
        }
        let deterministic = percentiles { _ in mean }
        // A run's few hundred arrivals give a noisy p99 for any one draw of services: the median of many.
        let drawn = (0..<(window == nil ? 1 : draws)).map { draw in percentiles { measured(splitMix64($0 ^ UInt64(draw) << 40)) } }
        let median = { (values: [Double]) in values.sorted()[values.count / 2] }
        let general = (p50: median(drawn.map(\.p50)), p99: median(drawn.map(\.p99)))
        return [("D", deterministic), ("G", general)].map { kind, result in
            QueueingPrediction(
                model: "M/\(kind)/\(servers)", servers: servers, serviceMilliseconds: mean * 1000, utilization: utilization,
                p50: result.p50, p99: result.p99)
        }
    }

    /// Arrival times in seconds, flagged when they count: the bench's own sequence up to the
    /// window's end (the warm-up's arrivals load the queue but are not counted), or the steady
    /// state's, whose first tenth only warms the queue up.
    static func arrivalTimes(rate: Double, window: ClosedRange<Double>?) -> [(at: Double, counted: Bool)] {
        var gaps = PoissonArrivals(rate: rate)
        var now = 0.0
        var times: [(at: Double, counted: Bool)] = []
        if let window {
            while true {
                now += gaps.next()!
                guard now < window.upperBound else { return times }
                times.append((now, now >= window.lowerBound))
            }
        }
        for index in 0..<steadyStateArrivals {
            now += gaps.next()!
            times.append((now, index >= steadyStateArrivals / 10))
        }
        return times
    }

    /// Response times of the counted arrivals in a first-come-first-served queue: each arrival
    /// takes the server that frees first; `service` maps an arrival's index to its service time.
    static func simulate(arrivals: [(at: Double, counted: Bool)], servers: Int, service: (UInt64) -> Double) -> [Double] {
        var freeAt = [Double](repeating: 0, count: servers)
        var responses: [Double] = []
        responses.reserveCapacity(arrivals.count)
        for (index, arrival) in arrivals.enumerated() {
            let server = freeAt.indices.min { freeAt[$0] < freeAt[$1] }!
            let finish = max(arrival.at, freeAt[server]) + service(UInt64(index))
            freeAt[server] = finish
            if arrival.counted { responses.append(finish - arrival.at) }
        }
        return responses.isEmpty ? [0] : responses
    }
}
