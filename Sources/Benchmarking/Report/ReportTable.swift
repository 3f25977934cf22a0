import Classification
import Foundation

extension BenchReport {
    /// The report for a terminal: what was measured, one row per configuration, and the
    /// recommendation of a sweep.
    public var table: String {
        var lines = [headline, ""]
        let stages = Stage.allCases.filter { stage in runs.contains { $0.measurement.stages[stage.rawValue] != nil } }
        let header = ["config", "images/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms"] + stages.map { "\($0.rawValue) ms" }
            + ["CPU", "front CPU ms", "front-bound img/s", "front MB", "worker MB", "ready s", "failed"]
        var rows = [header]
        for run in runs {
            let measurement = run.measurement
            let latency = measurement.latency
            let resources = measurement.resources
            let workerPeak = resources.workers.map(\.peakRSSBytes).max()
            var row = [run.configuration.label, formatted(measurement.imagesPerSecond, 1)]
            row += [latency.p50, latency.p90, latency.p99, latency.p999].map { formatted($0, 2) }
            row += stages.map { stage in measurement.stages[stage.rawValue].map { formatted($0.p50, 2) } ?? "–" }
            row.append(resources.cpuUtilization.map { "\(formatted($0 * 100, 0))%" } ?? "–")
            row.append(frontMilliseconds(measurement).map { formatted($0, 2) } ?? "–")
            row.append(measurement.frontBoundImagesPerSecond.map { formatted($0, 0) } ?? "–")
            row.append(resources.front.map { megabytes($0.peakRSSBytes) } ?? "–")
            row.append(workerPeak.map { megabytes($0) + (resources.workers.count > 1 ? " max" : "") } ?? "–")
            row.append(run.readySeconds.map { formatted($0, 2) } ?? "–")
            row.append(measurement.failed == 0 ? "0" : "\(measurement.failed)!")
            rows.append(row)
        }
        lines += aligned(rows)
        for run in runs {
            guard let models = run.measurement.models else { continue }
            lines.append("")
            lines += aligned(
                [["model", "images/s", "share", "p50 ms", "p90 ms", "p99 ms", "failed"]]
                    + models.map { model in
                        let share = Double(model.requests) / Double(max(1, run.measurement.requests))
                        return [model.model, formatted(model.imagesPerSecond, 1), "\(formatted(share * 100, 0))%"]
                            + [model.latency.p50, model.latency.p90, model.latency.p99].map { formatted($0, 2) }
                            + [model.failed == 0 ? "0" : "\(model.failed)!"]
                    })
        }
        lines.append("")
        lines.append(
            "stage columns are p50s; CPU is the serving processes' share of \(host.cpus) CPUs; front CPU ms is the front's CPU time per request "
                + "(a server's, or this process's for the pool, its load generation included); front-bound img/s is what the front could sustain on its "
                + "CPUs if inference took no time (near images/s: the front limits; far above it: the workers); MB are peak resident sets.")
        for run in runs where run.measurement.failed > 0 {
            let reasons = run.measurement.failures.map { "\($0.count)× \($0.message)" }.joined(separator: "; ")
            lines.append("failed in \(run.configuration.label): \(reasons)")
        }
        for run in runs {
            guard let models = run.measurement.queueing, let first = models.first else { continue }
            let latency = run.measurement.latency
            let predictions = models.map { "\($0.model) p50 \(formatted($0.p50, 1)), p99 \(formatted($0.p99, 1))" }.joined(separator: "; ")
            lines.append(
                "\(run.configuration.label): queueing models at the offered rate (\(first.servers) workers, mean inference \(formatted(first.serviceMilliseconds, 1)) ms, "
                    + "utilization \(formatted(first.utilization * 100, 0)) %): \(predictions) ms; measured p99 = \(formatted(latency.p99 / first.p99, 2))× M/D/\(first.servers)'s")
        }
        for run in runs where run.measurement.dropped > 0 {
            lines.append("\(run.configuration.label): \(run.measurement.dropped) arrivals dropped: \(LoadRunner.maxOutstanding) requests were already outstanding")
        }
        for skip in skipped {
            lines.append("skipped \(skip.configuration.label): \(skip.reason)")
        }
        if let recommendation {
            lines.append("recommended for throughput: \(recommendation.throughput.configuration.label) (\(recommendation.throughput.reason))")
            lines.append("recommended for latency:    \(recommendation.latency.configuration.label) (\(recommendation.latency.reason))")
        }
        return lines.joined(separator: "\n")
    }

    /// One line: model, target, workload and load.
    public var headline: String {
        var target = self.target.kind
        if let address = self.target.address { target += " \(address)" }
        if let engine = self.target.engine {
            let device = self.target.device.flatMap { $0 == "cpu" ? nil : " on \($0)" } ?? ""
            target += " (\(engine)\(self.target.precision.map { ", \($0)" } ?? "")\(device))"
        }
        let sizes = workload.sources.map { "\($0.items) × \(kilobytes($0.meanBytes))" }.joined(separator: ", ")
        let loadText = switch load.mode {
        case "open": "open loop at \(formatted(load.rate ?? 0, 1))/s"
        default: "closed loop, \(load.concurrency ?? 1) in flight"
        }
        let extent = load.requests.map { "\($0) requests" } ?? "\(formatted(load.durationSeconds, 0)) s"
        return "\(model) · \(target) · \(workload.description) (\(sizes)) · \(loadText) · \(extent) after \(formatted(load.warmUpSeconds, 0)) s warm-up"
    }
}

/// Rows as columns: the first left-aligned, the rest right-aligned.
private func aligned(_ rows: [[String]]) -> [String] {
    let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max()! }
    return rows.map { row in
        row.enumerated().map { column, cell in
            let padding = String(repeating: " ", count: widths[column] - cell.count)
            return column == 0 ? cell + padding : padding + cell
        }.joined(separator: "  ")
    }
}

/// The front's CPU time per answered request, in milliseconds.
private func frontMilliseconds(_ measurement: RunMeasurement) -> Double? {
    guard let front = measurement.resources.front, measurement.requests > 0 else { return nil }
    return front.cpuSeconds * 1000 / Double(measurement.requests)
}

private func megabytes(_ bytes: Int) -> String { String(bytes >> 20) }

private func kilobytes(_ bytes: Int) -> String { bytes >= 1 << 20 ? "\(formatted(Double(bytes) / 1048576, 1)) MB" : "\(bytes >> 10) KB" }
