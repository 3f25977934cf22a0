import Foundation
import InferenceEngines

/// A one-line progress bar on standard error, drawn only on a terminal and only for runs long
/// enough to need one.
struct ProgressBar {
    private let total: Int
    private let enabled: Bool
    private var done = 0
    private let start = ContinuousClock.now
    private var lastDrawn = ContinuousClock.now

    init(total: Int, minimumTotal: Int = 8) {
        self.total = total
        enabled = total >= minimumTotal && isatty(STDERR_FILENO) == 1
    }

    mutating func advance() {
        done += 1
        guard enabled, ContinuousClock.now - lastDrawn > .milliseconds(100) || done == total else { return }
        lastDrawn = .now
        let width = 30
        let filled = width * done / max(total, 1)
        let elapsed = (ContinuousClock.now - start).seconds
        let rate = Double(done) / max(elapsed, 1e-9)
        let remaining = Double(total - done) / max(rate, 1e-9)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data(String(format: "\r[%@] %d/%d  %.1f img/s  %.0f s left ", bar, done, total, rate, remaining).utf8))
    }

    /// Clears the bar so other output can be written; the next `advance` draws it again.
    func clear() {
        if enabled && done > 0 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
