import Foundation

/// `--chart FILE.png`: throughput per configuration beside its latency percentiles, with a
/// sweep's recommendations marked, legible at a glance.
public enum BenchChart {
    public static let defaultSize = (width: 1280, height: 640)

    public static func png(_ report: BenchReport, width: Int = defaultSize.width, height: Int = defaultSize.height) throws -> Data {
        let canvas = try Canvas(width: width, height: height, background: .white)
        canvas.text("visionpool bench: \(report.model), \(report.target.kind), \(report.workload.description)", x: 24, y: 34, size: 0.8, .ink, bold: true)
        canvas.text(report.headline, x: 24, y: 60, size: 0.45, .grey)
        let top = 110
        let bottom = height - 90
        let middle = width / 2
        let runs = report.runs
        let labels = runs.map(\.configuration.label)

        // Left: images/s per configuration.
        let throughput = runs.map(\.measurement.imagesPerSecond)
        let best = report.recommendation?.throughput.run
        let left = Panel(canvas: canvas, x: 80, y: top, width: middle - 120, height: bottom - top, maximum: throughput.max() ?? 1)
        left.frame(title: "throughput (images/s, higher is better)")
        for (index, value) in throughput.enumerated() {
            let slot = left.slot(index, of: runs.count)
            left.bar(x: slot.x, width: slot.width, value: value, index == best ? .accent : .blue)
            canvas.text(formatted(value, value >= 100 ? 0 : 1), x: slot.x + slot.width / 2, y: left.y(value) - 6, size: 0.45, .ink, align: .center)
            left.label(labels[index], x: slot.x + slot.width / 2, marked: index == best)
        }

        // Right: latency percentiles, grouped per configuration.
        let percentiles: [(String, KeyPath<LatencySummary, Double>, Canvas.Color)] = [
            ("p50", \.p50, .shade(0)), ("p90", \.p90, .shade(1)), ("p99", \.p99, .shade(2)), ("p99.9", \.p999, .shade(3)),
        ]
        let quickest = report.recommendation?.latency.run
        let highest = runs.map(\.measurement.latency.p999).max() ?? 1
        let right = Panel(canvas: canvas, x: middle + 70, y: top, width: middle - 110, height: bottom - top, maximum: highest)
        right.frame(title: "latency (ms, lower is better)")
        for (index, run) in runs.enumerated() {
            let slot = right.slot(index, of: runs.count)
            let barWidth = max(1, slot.width / percentiles.count)
            for (order, percentile) in percentiles.enumerated() {
                right.bar(x: slot.x + order * barWidth, width: barWidth - 1, value: run.measurement.latency[keyPath: percentile.1], percentile.2)
            }
            canvas.text(formatted(run.measurement.latency.p99, 1), x: slot.x + slot.width / 2, y: right.y(run.measurement.latency.p999) - 6,
                        size: 0.4, .ink, align: .center)
            right.label(labels[index], x: slot.x + slot.width / 2, marked: index == quickest)
        }
        var legendX = right.x
        for percentile in percentiles {
            canvas.fill(x: legendX, y: height - 34, width: 14, height: 14, percentile.2)
            canvas.text(percentile.0, x: legendX + 20, y: height - 22, size: 0.45, .ink)
            legendX += 80
        }
        canvas.text("(number above bars: p99)", x: legendX, y: height - 22, size: 0.4, .grey)
        if report.recommendation != nil {
            canvas.text("* recommended", x: left.x, y: height - 22, size: 0.45, .accent, bold: true)
        }
        return try canvas.png()
    }

    /// A plot area with a value axis from zero to a round number above `maximum`.
    private struct Panel {
        let canvas: Canvas
        let x: Int, top: Int, width: Int, height: Int
        let scale: Double
        let step: Double

        init(canvas: Canvas, x: Int, y: Int, width: Int, height: Int, maximum: Double) {
            self.canvas = canvas
            self.x = x
            top = y
            self.width = width
            self.height = height
            step = niceStep(max(maximum, 1e-9) / 5)
            scale = (maximum / step).rounded(.up) * step * 1.08
        }

        func y(_ value: Double) -> Int { top + height - Int((value / scale * Double(height)).rounded()) }

        func frame(title: String) {
            canvas.text(title, x: x, y: top - 16, size: 0.55, .ink, bold: true)
            var tick = 0.0
            while tick <= scale {
                let row = y(tick)
                canvas.line(from: (x, row), to: (x + width, row), .rule)
                canvas.text(formatted(tick, step < 1 ? 1 : 0), x: x - 8, y: row + 5, size: 0.4, .grey, align: .right)
                tick += step
            }
            canvas.line(from: (x, top), to: (x, top + height), .ink)
            canvas.line(from: (x, top + height), to: (x + width, top + height), .ink)
        }

        func slot(_ index: Int, of count: Int) -> (x: Int, width: Int) {
            let pitch = width / max(count, 1)
            let barWidth = max(2, min(pitch * 7 / 10, 120))
            return (x + index * pitch + (pitch - barWidth) / 2, barWidth)
        }

        func bar(x: Int, width: Int, value: Double, _ color: Canvas.Color) {
            let row = y(value)
            canvas.fill(x: x, y: row, width: width, height: top + height - row, color)
        }

        func label(_ text: String, x: Int, marked: Bool) {
            canvas.text(marked ? "*" + text : text, x: x, y: top + height + 22, size: 0.42, marked ? .accent : .ink, bold: marked, align: .center)
        }
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
func niceStep(_ raw: Double) -> Double {
    let power = pow(10, floor(log10(raw)))
    for multiple in [1.0, 2, 5, 10] where multiple * power >= raw { return multiple * power }
    return 10 * power
}

extension Canvas.Color {
    static let white = Self(red: 255, green: 255, blue: 255)
    static let ink = Self(red: 33, green: 37, blue: 41)
    static let grey = Self(red: 108, green: 117, blue: 125)
    static let rule = Self(red: 226, green: 230, blue: 234)
    static let blue = Self(red: 66, green: 133, blue: 244)
    static let accent = Self(red: 219, green: 68, blue: 55)

    /// Light to dark blues for successive percentiles.
    static func shade(_ index: Int) -> Self {
        let shades = [Self(red: 158, green: 202, blue: 225), Self(red: 107, green: 174, blue: 214),
                      Self(red: 49, green: 130, blue: 189), Self(red: 8, green: 69, blue: 148)]
        return shades[min(index, shades.count - 1)]
    }
}
