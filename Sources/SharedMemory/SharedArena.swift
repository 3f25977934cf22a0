import SystemSupport
import CLinuxShims
import CPoolWire
import Glibc
import SystemPackage

/// One shared-memory region (a memfd) mapped by the front and every worker, split into
/// fixed-size slots. A slot holds a header, then the input tensors for up to `maxBatch`
/// samples, then their scores: the decoder writes inputs in place and the engine reads them
/// and writes the scores there, so no tensor crosses a pipe.
public final class SharedArena: @unchecked Sendable {
    public struct Layout: Equatable, Sendable {
        public let slotCount: Int
        public let maxBatch: Int
        public let inputFloatsPerSample: Int
        public let outputFloatsPerSample: Int

        public init(slotCount: Int, maxBatch: Int, inputFloatsPerSample: Int, outputFloatsPerSample: Int) {
            self.slotCount = slotCount
            self.maxBatch = maxBatch
            self.inputFloatsPerSample = inputFloatsPerSample
            self.outputFloatsPerSample = outputFloatsPerSample
        }

        static let pageSize = 4096
        static let cacheLine = 64

        /// The first slot starts on the second page; the first holds the arena header.
        var firstSlotOffset: Int { Self.pageSize }
        var inputOffset: Int { MemoryLayout<vp_slot_header>.size }
        var outputOffset: Int { align(inputOffset + maxBatch * inputFloatsPerSample * 4, to: Self.cacheLine) }
        public var slotSize: Int { align(outputOffset + maxBatch * outputFloatsPerSample * 4, to: Self.pageSize) }
        public var totalSize: Int { firstSlotOffset + slotCount * slotSize }

        /// Offsets from the mapping's start of a slot's input and output tensors.
        public func tensorOffsets(slot: Int) -> (input: Int, output: Int) {
            let start = firstSlotOffset + slot * slotSize
            return (start + inputOffset, start + outputOffset)
        }
    }

    public let layout: Layout
    /// The memfd; the front passes it to workers as descriptor 3.
    public let descriptor: FileDescriptor
    private let base: UnsafeMutableRawPointer

    /// Creates and maps a new arena (`memfd_create`, `ftruncate`, `mmap`).
    public init(layout: Layout, name: String = "visionpool-arena") throws(Errno) {
        guard layout.slotCount > 0, layout.maxBatch > 0, layout.inputFloatsPerSample > 0, layout.outputFloatsPerSample > 0 else {
            throw Errno.invalidArgument
        }
        let fd = try retryingOnInterrupt { CLinuxShims_memfd_create(name) }
        descriptor = FileDescriptor(rawValue: fd)
        do {
            _ = try retryingOnInterrupt { ftruncate(fd, off_t(layout.totalSize)) }
            base = try Self.map(fd, size: layout.totalSize)
        } catch {
            try? descriptor.close()
            throw error
        }
        self.layout = layout
        base.withMemoryRebound(to: vp_arena_header.self, capacity: 1) { header in
            header.pointee = vp_arena_header(
                magic: VP_ARENA_MAGIC, version: VP_ARENA_VERSION, slot_count: UInt32(layout.slotCount),
                max_batch: UInt32(layout.maxBatch), slot_size: UInt64(layout.slotSize),
                first_slot_offset: UInt64(layout.firstSlotOffset), input_floats_per_sample: UInt64(layout.inputFloatsPerSample),
                output_floats_per_sample: UInt64(layout.outputFloatsPerSample), total_size: UInt64(layout.totalSize), reserved: 0)
        }
        for slot in 0..<layout.slotCount {
            header(slot: slot).pointee = vp_slot_header(
                magic: VP_SLOT_MAGIC, batch: 0, sequence: 0, input_offset: UInt64(layout.inputOffset),
                output_offset: UInt64(layout.outputOffset), inference_nanoseconds: 0, reserved: (0, 0, 0))
        }
    }

    /// Maps an arena made by another process (a worker's descriptor 3), checking its header
    /// against what this process expects.
    public init(attaching descriptor: FileDescriptor, expecting expected: Layout) throws(ArenaError) {
        var status = stat()
        guard fstat(descriptor.rawValue, &status) == 0 else { throw .unusable("fstat failed: \(Errno(rawValue: errno))") }
        guard Int(status.st_size) == expected.totalSize else {
            throw .unusable("the arena is \(status.st_size) bytes; \(expected.totalSize) were expected")
        }
        let mapping: UnsafeMutableRawPointer
        do {
            mapping = try Self.map(descriptor.rawValue, size: expected.totalSize)
        } catch {
            throw .unusable("mmap failed: \(error)")
        }
        // Checked before the object is whole: once it is, a throw would run deinit and unmap twice.
        let header = mapping.load(as: vp_arena_header.self)
        guard header.magic == VP_ARENA_MAGIC, header.version == VP_ARENA_VERSION, Int(header.slot_count) == expected.slotCount,
              Int(header.max_batch) == expected.maxBatch, Int(header.slot_size) == expected.slotSize,
              Int(header.input_floats_per_sample) == expected.inputFloatsPerSample,
              Int(header.output_floats_per_sample) == expected.outputFloatsPerSample
        else {
            munmap(mapping, expected.totalSize)
            throw .unusable("the arena's header does not match the expected layout")
        }
        base = mapping
        self.descriptor = descriptor
        layout = expected
    }

    deinit {
        munmap(base, layout.totalSize)
        try? descriptor.close()
    }

    /// The mapping's start address in this process.
    public var baseAddress: UnsafeRawPointer { UnsafeRawPointer(base) }

    public func header(slot: Int) -> UnsafeMutablePointer<vp_slot_header> {
        precondition((0..<layout.slotCount).contains(slot), "slot \(slot) is outside the arena")
        return (base + layout.firstSlotOffset + slot * layout.slotSize).assumingMemoryBound(to: vp_slot_header.self)
    }

    /// The input tensors of `batch` samples in `slot`.
    public func input(slot: Int, batch: Int) -> UnsafeMutableBufferPointer<Float> {
        tensors(at: layout.tensorOffsets(slot: slot).input, floatsPerSample: layout.inputFloatsPerSample, first: 0, count: batch)
    }

    /// Sample `index`'s input tensor in `slot`.
    public func input(slot: Int, sample index: Int) -> UnsafeMutableBufferPointer<Float> {
        tensors(at: layout.tensorOffsets(slot: slot).input, floatsPerSample: layout.inputFloatsPerSample, first: index, count: 1)
    }

    /// The scores of `batch` samples in `slot`.
    public func output(slot: Int, batch: Int) -> UnsafeMutableBufferPointer<Float> {
        tensors(at: layout.tensorOffsets(slot: slot).output, floatsPerSample: layout.outputFloatsPerSample, first: 0, count: batch)
    }

    /// Sample `index`'s scores in `slot`.
    public func output(slot: Int, sample index: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(tensors(at: layout.tensorOffsets(slot: slot).output, floatsPerSample: layout.outputFloatsPerSample, first: index, count: 1))
    }

    /// Samples `first ..< first + count` of the tensors that start at `offset`.
    private func tensors(at offset: Int, floatsPerSample: Int, first: Int, count: Int) -> UnsafeMutableBufferPointer<Float> {
        precondition(first >= 0 && count >= 1 && first + count <= layout.maxBatch, "samples \(first)..<\(first + count) are outside the slot's \(layout.maxBatch)")
        let start = (base + offset).assumingMemoryBound(to: Float.self) + first * floatsPerSample
        return UnsafeMutableBufferPointer(start: start, count: count * floatsPerSample)
    }

    /// The offset of `address` from the mapping's start, if it lies inside the mapping.
    public func offset(of address: UnsafeRawPointer) -> Int? {
        let distance = address - baseAddress
        return (0..<layout.totalSize).contains(distance) ? distance : nil
    }

    private static func map(_ fd: Int32, size: Int) throws(Errno) -> UnsafeMutableRawPointer {
        guard let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), address != MAP_FAILED else {
            throw Errno(rawValue: errno)
        }
        return address
    }
}

/// Why an inherited arena could not be used.
public enum ArenaError: Error, CustomStringConvertible {
    case unusable(String)

    public var description: String {
        switch self {
        case .unusable(let reason): "shared-memory arena unusable: \(reason)"
        }
    }
}

func align(_ value: Int, to alignment: Int) -> Int { (value + alignment - 1) / alignment * alignment }
