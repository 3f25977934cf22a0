import Classification
import Foundation
import ImagePipeline

/// One image of a request: an encoded file, or a model-ready tensor.
public struct WorkloadItem: Sendable {
    public var name: String
    public var payload: ModelInput

    public var bytes: Int { payload.bytes }
}

/// One kind of input and its share of the requests.
public struct WorkloadSource: Sendable {
    public var name: String
    public var weight: Int
    public var items: [WorkloadItem]

    public init(name: String, weight: Int, items: [WorkloadItem]) {
        self.name = name
        self.weight = weight
        self.items = items
    }
}

/// Why a workload could not be assembled.
public struct WorkloadError: Error, CustomStringConvertible {
    public let description: String
}

/// The inputs a benchmark sends: one or more sources mixed by weight. Request `i` always gets
/// the same item, so runs and configurations see the same sequence.
public struct Workload: Sendable {
    public let sources: [WorkloadSource]
    private let cumulativeWeights: [Int]

    public init(sources: [WorkloadSource]) throws(WorkloadError) {
        guard !sources.isEmpty else { throw WorkloadError(description: "the workload is empty") }
        for source in sources {
            guard source.weight >= 1 else { throw WorkloadError(description: "\(source.name): a weight must be at least 1") }
            guard !source.items.isEmpty else { throw WorkloadError(description: "\(source.name): no images") }
        }
        self.sources = sources
        var total = 0
        cumulativeWeights = sources.map {
            total += $0.weight
            return total
        }
    }

    /// The item for request `index`: a source chosen by weight, then an item of it, both from
    /// a hash of the index.
    public func item(_ index: Int) -> WorkloadItem {
        let draw = splitMix64(UInt64(truncatingIfNeeded: index))
        let point = Int(draw % UInt64(cumulativeWeights.last!))
        let source = sources[cumulativeWeights.firstIndex { point < $0 }!]
        return source.items[Int((draw >> 32) % UInt64(source.items.count))]
    }

    public var summary: WorkloadSummary {
        WorkloadSummary(
            description: sources.map { sources.count > 1 ? "\($0.name)×\($0.weight)" : $0.name }.joined(separator: " + "),
            sources: sources.map {
                WorkloadSummary.Source(
                    name: $0.name, weight: $0.weight, items: $0.items.count,
                    meanBytes: $0.items.reduce(0) { $0 + $1.bytes } / $0.items.count)
            })
    }
}

public struct WorkloadSummary: Codable, Sendable, Equatable {
    public struct Source: Codable, Sendable, Equatable {
        public var name: String
        public var weight: Int
        public var items: Int
        public var meanBytes: Int
    }
    public var description: String
    public var sources: [Source]
}

extension Workload {
    /// Built-in sources, made by `tools/testdata/make_bench_images.py` into the catalog's `bench/` folder.
    public static let builtIn = ["tensor", "imagenet", "camera"]
    /// At most this many files are loaded from one folder.
    public static let maxFilesPerSource = 512

    /// Parses `NAME[=WEIGHT],…`, where NAME is `tensor`, `imagenet`, `camera` or a folder of images.
    public static func parse(_ text: String) throws(WorkloadError) -> [(name: String, weight: Int)] {
        var parts: [(name: String, weight: Int)] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let name = pieces.first, !name.isEmpty else { throw WorkloadError(description: "an empty workload name in \"\(text)\"") }
            var weight = 1
            if pieces.count == 2 {
                guard let value = Int(pieces[1]), value >= 1 else {
                    throw WorkloadError(description: "the weight of \(name) must be a whole number ≥ 1, not \"\(pieces[1])\"")
                }
                weight = value
            }
            parts.append((name, weight))
        }
        return parts
    }

    /// Loads `NAME[=WEIGHT],…`: `tensor` is a pre-built tensor of `sampleShape`; `imagenet` and
    /// `camera` are the generated JPEGs in `benchDirectory`; anything else is a folder or file.
    public static func load(_ text: String, benchDirectory: URL, sampleShape: [Int]) throws(WorkloadError) -> Workload {
        try Workload(sources: parse(text).map { (name, weight) throws(WorkloadError) in
            switch name {
            case "tensor":
                return WorkloadSource(name: name, weight: weight, items: [WorkloadItem(name: "tensor", payload: .tensor(patternTensor(count: sampleShape.reduce(1, *))[...]))])
            case "imagenet", "camera":
                let folder = benchDirectory.appendingPathComponent(name).path
                guard FileManager.default.fileExists(atPath: folder) else {
                    throw WorkloadError(description: "\(folder) is missing: tools/setup.sh --prepare (or tools/testdata/make_bench_images.py) makes it")
                }
                return try files(named: name, weight: weight, paths: [folder])
            default:
                return try files(named: name, weight: weight, paths: [name])
            }
        })
    }

    private static func files(named name: String, weight: Int, paths: [String]) throws(WorkloadError) -> WorkloadSource {
        let (images, missing) = ImageFiles.expand(paths)
        guard missing.isEmpty else {
            throw WorkloadError(description: "\(name): no such file or folder (workloads are \(builtIn.joined(separator: ", ")) or a folder of images)")
        }
        var items: [WorkloadItem] = []
        for path in images.prefix(maxFilesPerSource) {
            do {
                items.append(WorkloadItem(name: URL(fileURLWithPath: path).lastPathComponent, payload: .image(try ImageFiles.read(path))))
            } catch {
                throw WorkloadError(description: "\(path): \(error)")
            }
        }
        return WorkloadSource(name: name, weight: weight, items: items)
    }

    /// A smooth pattern in the range of normalized pixels, the same on every run.
    public static func patternTensor(count: Int) -> [Float] {
        (0..<count).map { Float(($0 * 7919) % 2001) / 1000 - 1 }
    }
}

/// SplitMix64's finaliser: a well-mixed 64-bit hash of `value` (Steele, Lea and Flood, 2014).
func splitMix64(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
