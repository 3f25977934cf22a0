/// One shape of the thing measured: the pool's workers × threads and batch limit, or the
/// in-process engine's threads and batch.
public struct BenchConfiguration: Codable, Sendable, Hashable {
    /// Worker processes; nil for the in-process engine and for servers.
    public var workers: Int?
    /// Intra-op threads per engine.
    public var threads: Int?
    /// The pool's batch limit, or the in-process engine's batch.
    public var batch: Int?

    public init(workers: Int?, threads: Int?, batch: Int?) {
        self.workers = workers
        self.threads = threads
        self.batch = batch
    }

    /// Short, for tables and charts: `2w×1t b4`.
    public var label: String {
        var parts: [String] = []
        if let workers, let threads { parts.append("\(workers)w×\(threads)t") } else if let threads { parts.append("\(threads)t") }
        if let batch { parts.append("b\(batch)") }
        return parts.isEmpty ? "server" : parts.joined(separator: " ")
    }
}

/// `--sweep workers=1,2 threads=1,2 batch=1,4,8`: every combination, run one after another
/// in one invocation so they are compared under the same conditions.
public struct Sweep: Sendable, Equatable {
    public enum Parameter: String, CaseIterable, Sendable {
        case workers, threads, batch
    }

    public var values: [Parameter: [Int]]

    public init(values: [Parameter: [Int]] = [:]) {
        self.values = values
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses `NAME=V1,V2,…` terms.
    public init(parsing terms: [String]) throws(ParseError) {
        var values: [Parameter: [Int]] = [:]
        let names = Parameter.allCases.map(\.rawValue).joined(separator: ", ")
        for term in terms {
            let pieces = term.split(separator: "=", maxSplits: 1).map(String.init)
            guard pieces.count == 2, let parameter = Parameter(rawValue: pieces[0]) else {
                throw ParseError(description: "a sweep term is NAME=V1,V2,… with NAME one of \(names), not \"\(term)\"")
            }
            guard values[parameter] == nil else { throw ParseError(description: "\(parameter.rawValue) is swept twice") }
            let numbers = pieces[1].split(separator: ",").map { Int($0) }
            guard !numbers.isEmpty, numbers.allSatisfy({ ($0 ?? 0) >= 1 }) else {
                throw ParseError(description: "\(parameter.rawValue) takes whole numbers ≥ 1, not \"\(pieces[1])\"")
            }
            var seen = Set<Int>()
            values[parameter] = numbers.compactMap { $0 }.filter { seen.insert($0).inserted }
        }
        self.values = values
    }

    /// Every combination, each swept parameter replacing the base configuration's value;
    /// workers vary slowest, batch fastest.
    public func configurations(base: BenchConfiguration) -> [BenchConfiguration] {
        var result: [BenchConfiguration] = []
        for workers in values[.workers].map({ $0.map(Optional.some) }) ?? [base.workers] {
            for threads in values[.threads].map({ $0.map(Optional.some) }) ?? [base.threads] {
                for batch in values[.batch].map({ $0.map(Optional.some) }) ?? [base.batch] {
                    result.append(BenchConfiguration(workers: workers, threads: threads, batch: batch))
                }
            }
        }
        return result
    }
}

/// The configurations a sweep recommends.
public struct Recommendation: Codable, Sendable, Equatable {
    public struct Pick: Codable, Sendable, Equatable {
        /// Index into the report's runs.
        public var run: Int
        public var configuration: BenchConfiguration
        public var reason: String
    }
    public var throughput: Pick
    public var latency: Pick

    /// Most images/s for throughput; the lowest p99 (then p50) for latency, among runs with
    /// no failed requests (all runs when every one had failures). Under a closed loop every
    /// configuration sees the same clients; under an open loop (`--rate`), the same offered
    /// load: the fair comparison of latency.
    public init?(runs: [BenchRun]) {
        let clean = runs.indices.filter { runs[$0].measurement.failed == 0 && runs[$0].measurement.requests > 0 }
        let candidates = clean.isEmpty ? runs.indices.filter { runs[$0].measurement.requests > 0 } : clean
        guard let fastest = candidates.max(by: { runs[$0].measurement.imagesPerSecond < runs[$1].measurement.imagesPerSecond }),
              let quickest = candidates.min(by: { Self.latencyKey(runs[$0]).lexicographicallyPrecedes(Self.latencyKey(runs[$1])) })
        else { return nil }
        let best = runs[fastest].measurement
        throughput = Pick(
            run: fastest, configuration: runs[fastest].configuration,
            reason: "most images/s: \(formatted(best.imagesPerSecond, 1)) (p99 \(formatted(best.latency.p99, 1)) ms)")
        let low = runs[quickest].measurement
        latency = Pick(
            run: quickest, configuration: runs[quickest].configuration,
            reason: "lowest p99: \(formatted(low.latency.p99, 1)) ms (p50 \(formatted(low.latency.p50, 1)) ms, \(formatted(low.imagesPerSecond, 1)) images/s)")
    }

    private static func latencyKey(_ run: BenchRun) -> [Double] { [run.measurement.latency.p99, run.measurement.latency.p50] }
}

func formatted(_ value: Double, _ decimals: Int) -> String {
    String(format: "%.\(decimals)f", value)
}
