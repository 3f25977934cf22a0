import SystemSupport
import Foundation
import WorkerPool

/// One configuration's run.
public struct BenchRun: Codable, Sendable {
    public var configuration: BenchConfiguration
    /// Seconds from creating the engine or pool to its being ready (nil for a running server).
    public var readySeconds: Double?
    public var measurement: RunMeasurement

    public init(configuration: BenchConfiguration, readySeconds: Double?, measurement: RunMeasurement) {
        self.configuration = configuration
        self.readySeconds = readySeconds
        self.measurement = measurement
    }
}

/// A configuration a sweep could not run, and why.
public struct SkippedRun: Codable, Sendable {
    public var configuration: BenchConfiguration
    public var reason: String

    public init(configuration: BenchConfiguration, reason: String) {
        self.configuration = configuration
        self.reason = reason
    }
}

/// Everything one `visionpool bench` invocation measured: what `--json FILE` writes.
/// The schema is `docs/bench-report.schema.json`; `schemaVersion` changes when a field
/// changes meaning or goes away (new fields may appear without it).
public struct BenchReport: Codable, Sendable {
    public static let currentSchemaVersion = 1

    public struct Host: Codable, Sendable {
        public var cpus: Int
        public var cpuModel: String
        public var kernel: String

        public static var current: Host {
            let cpuInfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
            let model = cpuInfo.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1).last
            var names = utsname()
            uname(&names)
            let release = withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            return Host(
                cpus: availableCPUs().count, cpuModel: model.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown",
                kernel: release)
        }
    }

    public struct Target: Codable, Sendable {
        /// `in-process`, `pool`, `socket` or `url`.
        public var kind: String
        /// The socket path or URL of a server.
        public var address: String?
        /// `openvino`, `onnxruntime` or `opencv`, with its precision and device; nil for a server.
        public var engine: String?
        public var precision: String?
        /// `cpu`, `cuda` (every GPU) or `cuda:N[,M…]`, as asked for.
        public var device: String?

        public init(kind: String, address: String? = nil, engine: String? = nil, precision: String? = nil, device: String? = nil) {
            self.kind = kind
            self.address = address
            self.engine = engine
            self.precision = precision
            self.device = device
        }
    }

    public struct Load: Codable, Sendable {
        /// `closed` or `open`.
        public var mode: String
        public var concurrency: Int?
        public var rate: Double?
        public var warmUpSeconds: Double
        public var durationSeconds: Double
        public var requests: Int?

        public init(_ model: LoadModel, limits: RunLimits) {
            switch model {
            case .closed(let concurrency):
                mode = "closed"
                self.concurrency = concurrency
            case .open(let rate):
                mode = "open"
                self.rate = rate
            }
            warmUpSeconds = limits.warmUp.seconds
            durationSeconds = limits.duration.seconds
            requests = limits.requests
        }
    }

    public var schemaVersion = currentSchemaVersion
    public var tool = "visionpool bench"
    /// ISO 8601, UTC.
    public var startedAt: String
    public var host: Host
    public var model: String
    public var target: Target
    public var workload: WorkloadSummary
    public var load: Load
    public var runs: [BenchRun]
    public var skipped: [SkippedRun]
    /// Present when more than one configuration ran.
    public var recommendation: Recommendation?

    public init(
        startedAt: Date, model: String, target: Target, workload: WorkloadSummary, load: Load, runs: [BenchRun], skipped: [SkippedRun]
    ) {
        self.startedAt = ISO8601DateFormatter().string(from: startedAt)
        host = .current
        self.model = model
        self.target = target
        self.workload = workload
        self.load = load
        self.runs = runs
        self.skipped = skipped
        recommendation = runs.count > 1 ? Recommendation(runs: runs) : nil
    }

    /// The report as the JSON `--json` writes: snake_case keys, sorted, pretty-printed.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
