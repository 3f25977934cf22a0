import Foundation
import ModelCatalog

/// One class and how sure the model is of it.
public struct ScoredClass: Codable, Sendable, Equatable {
    public var classIndex: Int
    public var label: String
    /// A probability in 0...1.
    public var score: Float

    public init(classIndex: Int, label: String, score: Float) {
        self.classIndex = classIndex
        self.label = label
        self.score = score
    }
}

/// The `k` most likely classes from one sample's scores, most likely first; logits go
/// through a numerically stable softmax first.
public func topClasses(
    scores: UnsafeBufferPointer<Float>, kind: ModelManifest.Output.Kind, labels: [String], k: Int
) -> [ScoredClass] {
    guard !scores.isEmpty, k > 0 else { return [] }
    let probabilities: [Float]
    switch kind {
    case .probabilities:
        probabilities = Array(scores)
    case .logits:
        let largest = scores.max()!
        let exponentials = scores.map { expf($0 - largest) }
        let total = exponentials.reduce(0, +)
        probabilities = exponentials.map { $0 / total }
    }
    let count = min(k, probabilities.count)
    var best: [Int] = []
    best.reserveCapacity(count + 1)
    for index in probabilities.indices {
        guard best.count < count || probabilities[index] > probabilities[best[count - 1]] else { continue }
        let position = best.firstIndex { probabilities[$0] < probabilities[index] } ?? best.count
        best.insert(index, at: position)
        if best.count > count { best.removeLast() }
    }
    return best.map { ScoredClass(classIndex: $0, label: labels.indices.contains($0) ? labels[$0] : "class \($0)", score: probabilities[$0]) }
}
