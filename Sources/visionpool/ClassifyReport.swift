import Classification
import Foundation

/// Writes each image's outcome as it comes: a table for people or JSON lines for programs.
struct ClassifyReport {
    let json: Bool
    private(set) var succeeded = 0
    private(set) var failures = 0
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    init(json: Bool) {
        self.json = json
    }

    private struct Success: Encodable {
        let path: String
        let top: [ScoredClass]
        let image: ImageSummary
        /// Milliseconds per stage (decode, preprocess, inference; queue and handoff on a pool) and in total.
        let timingsMs: [String: Double]
    }

    private struct ImageSummary: Encodable {
        let format: String
        let width: Int
        let height: Int
        let dctScale: Int
    }


    private struct Failure: Encodable {
        struct Detail: Encodable {
            let kind: String
            let message: String
        }
        let path: String
        let error: Detail
    }

    /// Writes one image's outcome.
    mutating func record(path: String, outcome: Result<Classification, Error>) {
        switch outcome {
        case .success(let classification): classified(path: path, classification: classification)
        case .failure(let error as ClassificationError): failed(path: path, kind: error.kind, message: error.description)
        case .failure(let error): failed(path: path, kind: "unreadable", message: "\(error)")
        }
    }

    private mutating func classified(path: String, classification: Classification) {
        succeeded += 1
        let image = classification.image
        let stages = classification.stages
        if json {
            emit(Success(
                path: path, top: classification.top,
                image: ImageSummary(format: image.info.format.rawValue, width: image.info.width, height: image.info.height, dctScale: image.dctScale),
                timingsMs: stages.milliseconds.merging(["total": classification.totalSeconds * 1000]) { $1 }))
            return
        }
        var lines = ["\(path)  (\(image.info.width)×\(image.info.height) \(image.info.format.rawValue.uppercased()), \(String(format: "%.1f", classification.totalSeconds * 1000)) ms)"]
        for (rank, scored) in classification.top.enumerated() {
            let percent = String(format: "%5.1f%%", scored.score * 100)
            lines.append("  \(String(rank + 1).leftPadded(to: 2))  \(percent)  \(scored.label.rightPadded(to: 30)) #\(scored.classIndex)")
        }
        print(lines.joined(separator: "\n"))
    }

    mutating func failed(path: String, kind: String, message: String) {
        failures += 1
        if json {
            emit(Failure(path: path, error: .init(kind: kind, message: message)))
        }
        printError("error: \(path): \(message)")
    }

    private func emit(_ value: some Encodable) {
        print(String(decoding: try! encoder.encode(value), as: UTF8.self))
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
    func rightPadded(to width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
