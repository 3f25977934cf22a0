import CLinuxShims
import CPoolWire
import EngineInterface
import Foundation
import SharedMemory
import SystemPackage
import Testing
@testable import WorkerPool

@Suite struct ControlChannelTests {
    let layout = SharedArena.Layout(slotCount: 4, maxBatch: 2, inputFloatsPerSample: 12, outputFloatsPerSample: 10)

    func pair() throws -> (ControlChannel, ControlChannel) {
        var sockets: [Int32] = [-1, -1]
        try #require(CLinuxShims_socketpair_seqpacket(&sockets) == 0)
        return (ControlChannel(descriptor: FileDescriptor(rawValue: sockets[0]), layout: layout),
                ControlChannel(descriptor: FileDescriptor(rawValue: sockets[1]), layout: layout))
    }

    @Test func messagesRoundTrip() throws {
        let (front, worker) = try pair()
        defer {
            try? front.descriptor.close()
            try? worker.descriptor.close()
        }
        var message = ControlMessage(kind: .done, slot: 3, batch: 2, sequence: 99)
        message.inputOffset = 4160
        message.text = "fine"
        try worker.send(message)
        #expect(try front.receive() == message)
        try? worker.descriptor.close()
        #expect(try front.receive() == nil, "EOF when the peer is gone")
    }

    /// A worker's ready message carries its engine's description, fallback and kernels
    /// included; a fallback reason too long for the message is shortened, never the JSON cut.
    @Test("ready messages describe the engine", arguments: [40, 4000])
    func readyMessagesDescribeTheEngine(reasonLength: Int) throws {
        let (front, worker) = try pair()
        defer {
            try? front.descriptor.close()
            try? worker.descriptor.close()
        }
        let description = EngineDescription(
            kind: .openvino, precision: "int8+f32", threads: 1, version: "2026.4.1",
            fallback: PrecisionFallback(from: "bf16", to: "f32", reason: String(repeating: "no suitable implementations ", count: reasonLength / 28 + 1)),
            kernels: KernelCensus(int8: 32, f32: 18, instructionSets: ["avx2": 49, "mlas": 1]))
        try worker.send(.ready(description, warmUp: .milliseconds(12)))
        let received = try #require(try front.receive())
        let described = try #require(received.engineDescription, "the text is the description's JSON: \(received.text)")
        #expect(received.kind == .ready && received.inferenceNanoseconds == 12_000_000)
        #expect(described.kernels == description.kernels && described.precision == "int8+f32")
        let reason = try #require(described.fallback?.reason)
        #expect(reasonLength < 100 ? reason == description.fallback?.reason : reason.hasSuffix("…") && reason.count > 100)
    }

    @Test("malformed messages are refused", arguments: [
        [UInt8](repeating: 0, count: 10),
        [UInt8](repeating: 0xFF, count: MemoryLayout<vp_control_message>.size),
    ])
    func malformed(bytes: [UInt8]) throws {
        let (front, worker) = try pair()
        defer {
            try? front.descriptor.close()
            try? worker.descriptor.close()
        }
        try worker.sendRaw(bytes)
        #expect(throws: ControlError.self) { try front.receive() }
    }

    @Test("out-of-range slots and batches are refused", arguments: [(4, 1), (0, 3)])
    func outOfRange(slot: Int, batch: Int) throws {
        let (front, worker) = try pair()
        defer {
            try? front.descriptor.close()
            try? worker.descriptor.close()
        }
        try worker.send(ControlMessage(kind: .run, slot: slot, batch: batch, sequence: 1))
        #expect(throws: ControlError.self) { try front.receive() }
    }
}

@Suite struct CPUPlacementTests {
    @Test func setsAreDisjoint() throws {
        let plan = try CPUPlacement.plan(workers: 2, threads: 2, available: [0, 1, 2, 3], oversubscribe: false)
        #expect(plan == [[0, 1], [2, 3]])
    }

    @Test func theFrontKeepsTheLastCPUsAndTheWorkersTheRest() throws {
        #expect(try CPUPlacement.split([0, 1, 2, 3], frontCPUs: 1) == ([0, 1, 2], [3]))
        #expect(try CPUPlacement.split([2, 5], frontCPUs: 0) == ([2, 5], []))
        #expect(throws: PoolError.self) { try CPUPlacement.split([0, 1], frontCPUs: 2) }
    }

    @Test func oversubscriptionMustBeAskedFor() throws {
        #expect(throws: PoolError.self) { try CPUPlacement.plan(workers: 3, threads: 1, available: [0, 1], oversubscribe: false) }
        #expect(try CPUPlacement.plan(workers: 3, threads: 1, available: [4, 6], oversubscribe: true) == [[4], [6], [4]])
    }

    /// Under a quota tighter than the mask, the mask's CPUs are not this process's to divide.
    @Test func underAQuotaEveryWorkerSharesTheMask() throws {
        #expect(try CPUPlacement.plan(workers: 2, threads: 1, available: [0, 1, 2, 3], oversubscribe: false, quotaBound: true) == [[0, 1, 2, 3], [0, 1, 2, 3]])
    }
}

@Suite struct DevicePlacementTests {
    let model = EngineModel(file: URL(fileURLWithPath: "/m.onnx"), sampleShape: [3, 2, 2], outputCount: 10)

    @Test func workersSpreadOverTheDevicesSeatBySeatWithTheirOwnThreads() {
        var configuration = PoolConfiguration(
            model: model, engine: EngineOptions(kind: .onnxruntime, device: .cuda(0)), workers: 3, threadsPerWorker: 2)
        configuration.devices = [.cuda(0), .cuda(1)]
        #expect((0..<3).map { configuration.engine(seat: $0).device } == [.cuda(0), .cuda(1), .cuda(0)])
        #expect((0..<3).allSatisfy { configuration.engine(seat: $0).threads == 2 })
    }

    @Test func withoutDevicesEveryWorkerRunsTheEnginesDevice() {
        let configuration = PoolConfiguration(model: model, engine: EngineOptions(), workers: 2, threadsPerWorker: 1)
        #expect(configuration.engine(seat: 1).device == .cpu)
    }
}
