import CLinuxShims
import Foundation
import Glibc
import InferenceEngines
import SharedMemory
import SystemPackage
import SystemSupport
import WorkerPool

/// The loop of one worker process: pin, map the arena, compile and warm the engine, report
/// ready, then run batches in place until told to stop or the front goes away.
enum WorkerLoop {
    static func run(_ configuration: WorkerConfiguration) -> Never {
        // Die with the front, and don't start at all if it is already gone. Stop only on its
        // word: a Ctrl-C or an init system's SIGTERM to every process is the front's to handle.
        _ = CLinuxShims_set_parent_death_signal(SIGKILL)
        guard getppid() == configuration.parentPID else { exit(1) }
        _ = CLinuxShims_ignore_stop_signals()
        close(Int32(CLinuxShims_WORKER_EXECUTABLE_FD))
        failIfAsked()
        if !configuration.cpus.isEmpty {
            do {
                try pinThisProcess(to: configuration.cpus)
            } catch {
                fail("cannot pin to CPUs \(configuration.cpus): \(error)")
            }
        }
        let arena: SharedArena
        do {
            arena = try SharedArena(
                attaching: FileDescriptor(rawValue: Int32(CLinuxShims_WORKER_ARENA_FD)), expecting: configuration.arenaLayout)
        } catch {
            fail("\(error)")
        }
        let control = ControlChannel(descriptor: FileDescriptor(rawValue: Int32(CLinuxShims_WORKER_CONTROL_FD)), layout: arena.layout)
        let loaded: LoadedEngine
        do {
            loaded = try loadEngine(
                model: configuration.model, options: configuration.engine, warmUpBatches: configuration.maxBatch, census: configuration.countKernels)
            // A GPU reads the input from the slots and writes the scores back by DMA: pinned
            // once, for every slot, before the first batch. On the CPU, locked if asked.
            if configuration.engine.device.isGPU {
                try arena.pin(with: CUDAHostRegistration())
            } else if configuration.lockSlots {
                do {
                    try arena.pin(with: MemoryLock())
                } catch {
                    failToStart("cannot lock the \(arena.layout.totalSize)-byte arena in RAM (mlock: \(error)): raise the memlock limit (ulimit -l) or leave out --lock-slots", control)
                }
            }
        } catch {
            failToStart("\(error)", control)
        }
        let engine = loaded.engine
        let device = configuration.engine.device
        send(.ready(loaded.description, warmUp: loaded.largestBatchTime), on: control)

        var batchesRun = 0
        while true {
            let message: ControlMessage?
            do {
                message = try control.receive()
            } catch {
                fail("\(error); exiting so the front replaces this worker")
            }
            // Leave without running OpenVINO's and TBB's global destructors: nothing needs
            // flushing, and skipping them makes a stop take milliseconds instead of a third of a second.
            guard let message, message.kind != .stop else { _exit(0) }
            guard message.kind == .run else { fail("unexpected \(message.kind) message from the front") }
            let received = monotonicNanoseconds()
            batchesRun += 1
            var (reply, deviceFailed) = injectedEngineErrorInterval.map { batchesRun % $0 == 0 } == true
                ? (injectedEngineError(message), false) : runBatch(message, engine: engine, arena: arena)
            reply.receivedAt = received
            reply.repliedAt = monotonicNanoseconds()
            send(reply, on: control)
            if deviceFailed { fail("\(device) failed under a batch (\(reply.text)); exiting so the front replaces this worker") }
        }
    }

    /// Fault injection, for tests and failure drills: while the file named by
    /// `VISIONPOOL_FAIL_WORKER_START_IF_EXISTS` exists, workers exit as soon as they start, as
    /// a worker would whose engine cannot load; removing the file lets them start again.
    static func failIfAsked() {
        guard let path = ProcessInfo.processInfo.environment["VISIONPOOL_FAIL_WORKER_START_IF_EXISTS"],
              access(path, F_OK) == 0 else { return }
        fail("\(path) exists (VISIONPOOL_FAIL_WORKER_START_IF_EXISTS): failing at start as asked")
    }

    /// Fault injection, for tests and failure drills: with `VISIONPOOL_INJECT_ENGINE_ERROR_EVERY=N`
    /// in the front's environment, every Nth batch a worker is sent fails as an engine error
    /// would (the engine is not run), so the path from a failing engine to the client's answer
    /// can be exercised with real engines.
    static let injectedEngineErrorInterval = ProcessInfo.processInfo.environment["VISIONPOOL_INJECT_ENGINE_ERROR_EVERY"]
        .flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil }

    static func injectedEngineError(_ message: ControlMessage) -> ControlMessage {
        var reply = ControlMessage(kind: .error, slot: message.slot, batch: message.batch, sequence: message.sequence)
        reply.text = "injected engine error (VISIONPOOL_INJECT_ENGINE_ERROR_EVERY)"
        return reply
    }

    /// Runs one batch on its slot in place and says how it went, and whether the device failed
    /// so that this worker must not run another.
    static func runBatch(_ message: ControlMessage, engine: any InferenceEngine, arena: SharedArena) -> (ControlMessage, deviceFailed: Bool) {
        let input = arena.input(slot: message.slot, batch: message.batch)
        let output = arena.output(slot: message.slot, batch: message.batch)
        let start = ContinuousClock.now
        var reply = ControlMessage(kind: .done, slot: message.slot, batch: message.batch, sequence: message.sequence)
        do {
            try engine.infer(batch: message.batch, input: input, output: output)
        } catch {
            reply.kind = .error
            reply.text = error.message
            return (reply, error.kind == .deviceFailed)
        }
        reply.inferenceNanoseconds = UInt64(((ContinuousClock.now - start).seconds * 1e9).rounded())
        // Report where the engine's tensors really are, as the engine itself says.
        let bound = engine.boundBuffers(batch: message.batch)
        reply.inputOffset = bound.input.flatMap(arena.offset(of:)) ?? -1
        reply.outputOffset = bound.output.flatMap(arena.offset(of:)) ?? -1
        let header = arena.header(slot: message.slot)
        header.pointee.batch = UInt32(message.batch)
        header.pointee.sequence = message.sequence
        header.pointee.inference_nanoseconds = reply.inferenceNanoseconds
        return (reply, false)
    }

    private static func send(_ message: ControlMessage, on control: ControlChannel) {
        do {
            try control.send(message)
        } catch {
            _exit(0)  // The front is gone.
        }
    }

    /// A worker that cannot start says why on its control socket, where the front reads it and
    /// stops the start with that reason (its stderr would say it once per retry), and exits.
    private static func failToStart(_ reason: String, _ control: ControlChannel) -> Never {
        var message = ControlMessage(kind: .startFailed)
        message.pid = Int(getpid())
        message.text = reason
        send(message, on: control)
        exit(3)
    }

    private static func fail(_ reason: String) -> Never {
        FileHandle.standardError.write(Data("visionpool worker \(getpid()): \(reason)\n".utf8))
        exit(2)
    }
}
