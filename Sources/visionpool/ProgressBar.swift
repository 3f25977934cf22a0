import Foundation
import SystemSupport

/// The one line of progress on standard error, drawn over itself, and only on a terminal:
/// `classify`'s bar and `bench`'s running count both draw through it.
enum StatusLine {
    static let enabled = isatty(STDERR_FILENO) == 1

    static func draw(_ text: String) {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8)) }
    }

    static func clear() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

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
        enabled = total >= minimumTotal && StatusLine.enabled
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
        StatusLine.draw(String(format: "[%@] %d/%d  %.1f img/s  %.0f s left", bar, done, total, rate, remaining))
    }

    /// Clears the bar so other output can be written; the next `advance` draws it again.
    func clear() {
        if enabled && done > 0 { StatusLine.clear() }
    }
}
