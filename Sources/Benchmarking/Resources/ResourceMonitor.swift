import SystemSupport
import Foundation
import Synchronization
import WorkerPool

/// CPU time and peak memory of one process over a run.
public struct ProcessUsage: Codable, Sendable, Equatable {
    public var pid: Int32
    public var cpuSeconds: Double
    /// The most resident memory the process ever held (`VmHWM`), including its start-up.
    public var peakRSSBytes: Int
    /// The CPUs it may run on (its affinity mask), for the front: what its CPU time is measured against.
    public var cpus: Int?
}

/// What the serving processes used while a run was measured.
public struct ResourceUsage: Codable, Sendable, Equatable {
    /// CPU time of the front and the workers over the time measured, as a fraction of the CPUs
    /// this benchmark may use (1 = every one of them busy); nil when the server is not local.
    public var cpuUtilization: Double?
    /// Every process on the machine, from `/proc/stat`: what the serving processes, the
    /// load generator and anything else running took together.
    public var machineCPUUtilization: Double?
    public var cpus: Int
    /// The process that decodes and batches (for the in-process engine, the one that also infers).
    public var front: ProcessUsage?
    public var workers: [ProcessUsage]
    /// This benchmark's own process, when it is not the front (a server runs elsewhere).
    public var client: ProcessUsage?
}

/// Samples the serving processes' CPU time and peak memory every quarter second: workers may
/// come and go during a run, and a process that has exited can no longer be asked.
final class ResourceMonitor: Sendable {
    private struct Sample {
        var firstCPU: Double
        var lastCPU: Double
        var peakRSS: Int
        var isWorker: Bool
    }

    private struct State {
        var processes: [Int32: Sample] = [:]
        /// CPU seconds of each process alive when measuring began (this one included).
        var baseline: [Int32: Double] = [:]
        var front: Int32?
        var machineStart: (busy: Double, total: Double)?
    }

    private let serving: @Sendable () -> ServingProcesses
    private let state = Mutex(State())

    init(serving: @escaping @Sendable () -> ServingProcesses) {
        self.serving = serving
    }

    /// Samples until the task is cancelled.
    func run() async {
        while !Task.isCancelled {
            sample()
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Starts counting CPU time from now.
    func beginMeasuring() {
        let processes = serving()
        var baseline: [Int32: Double] = [:]
        for pid in [getpid()] + (processes.front.map { [$0] } ?? []) + processes.workers {
            baseline[pid] = ProcessTable.stat(pid)?.cpuSeconds
        }
        state.withLock {
            $0.processes = [:]
            $0.baseline = baseline
            $0.machineStart = ProcessTable.machineTicks()
        }
        sample()
    }

    private func sample() {
        let processes = serving()
        var readings: [(pid: Int32, cpu: Double, rss: Int, isWorker: Bool)] = []
        for (pid, isWorker) in (processes.front.map { [($0, false)] } ?? []) + processes.workers.map({ ($0, true) }) {
            guard let stat = ProcessTable.stat(pid) else { continue }
            readings.append((pid, stat.cpuSeconds, ProcessTable.peakResidentBytes(pid) ?? 0, isWorker))
        }
        state.withLock { state in
            guard state.machineStart != nil else { return }
            state.front = processes.front
            for reading in readings {
                // A worker started mid-run (a replacement) counts all of its time.
                var sample = state.processes[reading.pid]
                    ?? Sample(firstCPU: state.baseline[reading.pid] ?? 0, lastCPU: 0, peakRSS: 0, isWorker: reading.isWorker)
                sample.lastCPU = reading.cpu
                sample.peakRSS = max(sample.peakRSS, reading.rss)
                state.processes[reading.pid] = sample
            }
        }
    }

    /// The usage since `beginMeasuring()`, over `seconds` of wall-clock time.
    func finish(seconds: Double) -> ResourceUsage {
        sample()
        let cpus = max(1, availableCPUs().count)
        let machineEnd = ProcessTable.machineTicks()
        let me = getpid()
        let ownCPU = ProcessTable.stat(me)?.cpuSeconds ?? 0
        return state.withLock { state in
            defer { state.machineStart = nil }
            let usage = { (pid: Int32, sample: Sample) in
                ProcessUsage(pid: pid, cpuSeconds: max(0, sample.lastCPU - sample.firstCPU), peakRSSBytes: sample.peakRSS)
            }
            let front = state.front.flatMap { pid in
                state.processes[pid].map { sample in
                    var front = usage(pid, sample)
                    front.cpus = availableCPUs(of: pid).count
                    return front
                }
            }
            let workers = state.processes.filter { $0.value.isWorker }.sorted { $0.key < $1.key }.map { usage($0.key, $0.value) }
            let served = (front?.cpuSeconds ?? 0) + workers.reduce(0) { $0 + $1.cpuSeconds }
            var machine: Double?
            if let start = state.machineStart, let end = machineEnd, end.total > start.total {
                machine = (end.busy - start.busy) / (end.total - start.total)
            }
            let client = state.front == me ? nil : ProcessUsage(
                pid: me, cpuSeconds: max(0, ownCPU - (state.baseline[me] ?? ownCPU)), peakRSSBytes: ProcessTable.peakResidentBytes(me) ?? 0)
            return ResourceUsage(
                cpuUtilization: front == nil ? nil : served / (max(seconds, 1e-9) * Double(cpus)), machineCPUUtilization: machine, cpus: cpus,
                front: front, workers: workers, client: client)
        }
    }
}
