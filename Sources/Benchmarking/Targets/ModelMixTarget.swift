import Classification

/// A server's load spread over several of its models by weight (`bench --models A=3,B=1`):
/// a mixed workload, as several applications sharing one server make. Request `i` always goes
/// to the same model, so runs compare; the run reports each model apart as well as together.
public final class ModelMixTarget: ServerTarget {
    public let imagesPerRequest = 1
    /// One target per model, each connected to its model's metadata.
    private let targets: [any ServerTarget]
    private let cumulativeWeights: [Int]
    public let models: [String]

    /// `models` with their weights, each already connected.
    public init(_ models: [(name: String, weight: Int, target: any ServerTarget)]) throws(WorkloadError) {
        guard !models.isEmpty else { throw WorkloadError(description: "no model to send to") }
        guard Set(models.map(\.name)).count == models.count else {
            throw WorkloadError(description: "a model appears twice in \(models.map(\.name).joined(separator: ","))")
        }
        self.models = models.map(\.name)
        targets = models.map(\.target)
        var total = 0
        cumulativeWeights = models.map {
            total += $0.weight
            return total
        }
    }

    public var address: String { targets[0].address }

    /// The input shape the models share; a tensor workload needs them all to take the same.
    public var sampleShape: [Int] { targets[0].sampleShape }

    /// Why a tensor workload cannot go to these models, if it cannot: their shapes differ.
    public var tensorShapeConflict: String? {
        let shapes = Set(targets.map(\.sampleShape))
        guard shapes.count > 1 else { return nil }
        let listed = zip(models, targets).map { "\($0.0) \($0.1.sampleShape)" }.joined(separator: ", ")
        return "the models take different input shapes (\(listed)): mix them with an image workload (imagenet, camera or a folder)"
    }

    public func model(ofRequest index: Int) -> Int? {
        // Another hash than the workload's, so which model and which image are independent.
        let point = Int(splitMix64(UInt64(truncatingIfNeeded: index) ^ 0x6D6F_6465_6C6D_6978) % UInt64(cumulativeWeights.last!))
        return cumulativeWeights.firstIndex { point < $0 }!
    }

    public func send(_ items: [WorkloadItem], request index: Int) async throws -> StageTimes {
        try await targets[model(ofRequest: index)!].send(items)
    }

    public func send(_ items: [WorkloadItem]) async throws -> StageTimes {
        try await send(items, request: 0)
    }

    public func servingProcesses() -> ServingProcesses { targets[0].servingProcesses() }

    public func close() async {
        for target in targets { await target.close() }
    }
}
