import EngineInterface
import Foundation

/// A model's own serving configuration: `config.json` in its folder of a model repository,
/// as Triton's `config.pbtxt` is. Every key is optional; what it leaves out comes from the
/// command line (`serve --workers …`), then from the defaults.
///
/// ```json
/// {
///   "workers": 1, "threads": 1, "max_batch": 4, "batch_delay_ms": 2,
///   "engine": "openvino", "precision": "default", "device": "cpu",
///   "version_policy": {"latest": 1}
/// }
/// ```
/// `version_policy` is `{"latest": N}` (the N highest numbered versions, 1 by default),
/// `{"all": true}`, or `{"specific": [1, 3]}`.
public struct ModelConfig: Sendable, Equatable {
    public var workers: Int?
    public var threads: Int?
    public var maxBatch: Int?
    public var batchDelay: Duration?
    public var engine: EngineKind?
    public var precision: Precision?
    public var device: Device?
    public var versionPolicy: VersionPolicy = .latest(1)

    public init() {}

    /// The file in a model's folder.
    public static let fileName = "config.json"

    /// Which of a model's numbered versions are served.
    public enum VersionPolicy: Sendable, Equatable, CustomStringConvertible {
        case latest(Int)
        case all
        case specific([Int])

        /// The versions to serve of those `available`, highest first.
        public func select(from available: [Int]) -> [Int] {
            let sorted = available.sorted(by: >)
            switch self {
            case .latest(let count): return Array(sorted.prefix(count))
            case .all: return sorted
            case .specific(let versions): return sorted.filter(versions.contains)
            }
        }

        public var description: String {
            switch self {
            case .latest(let count): count == 1 ? "the latest version" : "the latest \(count) versions"
            case .all: "every version"
            case .specific(let versions): "versions \(versions.map(String.init).joined(separator: ", "))"
            }
        }
    }

    static let keys = ["workers", "threads", "max_batch", "batch_delay_ms", "engine", "precision", "device", "version_policy"]

    /// Reads and checks `url`; every problem is named with its key.
    public static func read(_ url: URL) throws(ModelRepositoryError) -> ModelConfig {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .invalidConfig(path: url.path, problems: ["cannot read it: \(error.localizedDescription)"])
        }
        return try parse(data, path: url.path)
    }

    static func parse(_ data: Data, path: String) throws(ModelRepositoryError) -> ModelConfig {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .invalidConfig(path: path, problems: ["not a JSON object"])
        }
        var config = ModelConfig(), problems: [String] = []
        for key in object.keys.sorted() where !keys.contains(key) {
            problems.append("unknown key \"\(key)\" (known: \(keys.joined(separator: ", ")))")
        }
        func integer(_ key: String, in range: ClosedRange<Int>) -> Int? {
            guard let value = object[key] else { return nil }
            guard let number = jsonNumber(value), let whole = Int(exactly: number.doubleValue),
                  range.contains(whole)
            else {
                problems.append("\"\(key)\" must be a whole number from \(range.lowerBound) to \(range.upperBound), not \(value)")
                return nil
            }
            return whole
        }
        func choice<T>(_ key: String, _ parse: (String) -> T?, _ allowed: String) -> T? {
            guard let value = object[key] else { return nil }
            guard let text = value as? String, let parsed = parse(text) else {
                problems.append("\"\(key)\" must be \(allowed), not \(value)")
                return nil
            }
            return parsed
        }
        config.workers = integer("workers", in: 1...256)
        config.threads = integer("threads", in: 1...256)
        config.maxBatch = integer("max_batch", in: 1...16)
        if let delay = object["batch_delay_ms"] {
            if let number = jsonNumber(delay), (0...10_000).contains(number.doubleValue) {
                config.batchDelay = .microseconds(Int64(number.doubleValue * 1000))
            } else {
                problems.append("\"batch_delay_ms\" must be a number of milliseconds from 0 to 10000, not \(delay)")
            }
        }
        config.engine = choice("engine", EngineKind.init(rawValue:), "one of \(EngineKind.allCases.map(\.rawValue).joined(separator: ", "))")
        config.precision = choice("precision", Precision.init(rawValue:), "one of \(Precision.allCases.map(\.rawValue).joined(separator: ", "))")
        config.device = choice("device", Device.init, "cpu, cuda or cuda:N")
        if let policy = object["version_policy"] {
            do throws(PolicyError) {
                config.versionPolicy = try versionPolicy(policy)
            } catch {
                problems.append("\"version_policy\" \(error.message), not \(policy)")
            }
        }
        guard problems.isEmpty else { throw .invalidConfig(path: path, problems: problems) }
        return config
    }

    /// A JSON number, not a boolean (JSONSerialization gives both as NSNumber; a boolean's type is a C char).
    private static func jsonNumber(_ value: Any) -> NSNumber? {
        guard let number = value as? NSNumber, number.objCType.pointee != CChar(UInt8(ascii: "c")) else { return nil }
        return number
    }

    private struct PolicyError: Error {
        let message: String
    }

    private static func versionPolicy(_ value: Any) throws(PolicyError) -> VersionPolicy {
        let expected = "must be {\"latest\": N}, {\"all\": true} or {\"specific\": [versions]}"
        guard let object = value as? [String: Any], object.count == 1, let (key, argument) = object.first else { throw PolicyError(message: expected) }
        switch key {
        case "latest":
            guard let count = jsonNumber(argument).flatMap({ Int(exactly: $0.doubleValue) }), count >= 1 else {
                throw PolicyError(message: "\"latest\" takes a whole number of versions, at least 1")
            }
            return .latest(count)
        case "all":
            guard argument as? Bool == true else { throw PolicyError(message: "\"all\" takes true") }
            return .all
        case "specific":
            let versions = (argument as? [Any] ?? []).compactMap { jsonNumber($0).flatMap { Int(exactly: $0.doubleValue) } }
            guard let list = argument as? [Any], !list.isEmpty, versions.count == list.count, versions.allSatisfy({ $0 >= 1 }) else {
                throw PolicyError(message: "\"specific\" takes a list of version numbers, each at least 1")
            }
            return .specific(versions)
        default:
            throw PolicyError(message: expected)
        }
    }
}
