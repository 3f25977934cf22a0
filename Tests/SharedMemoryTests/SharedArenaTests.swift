import CLinuxShims
import CPoolWire
import Glibc
import SharedMemory
import SystemPackage
import TestSupport
import Testing

@Suite struct SharedArenaTests {
    let layout = SharedArena.Layout(slotCount: 3, maxBatch: 4, inputFloatsPerSample: 3 * 224 * 224, outputFloatsPerSample: 1000)

    @Test func slotsArePageAlignedAndTensorsCacheLineAligned() throws {
        let arena = try SharedArena(layout: layout)
        #expect(layout.slotSize % 4096 == 0)
        for slot in 0..<layout.slotCount {
            let offsets = layout.tensorOffsets(slot: slot)
            #expect(offsets.input % 64 == 0 && offsets.output % 64 == 0)
            #expect(offsets.output - offsets.input >= layout.maxBatch * layout.inputFloatsPerSample * 4)
            #expect(arena.offset(of: UnsafeRawPointer(arena.input(slot: slot, batch: 1).baseAddress!)) == offsets.input)
            #expect(arena.offset(of: UnsafeRawPointer(arena.output(slot: slot, batch: 1).baseAddress!)) == offsets.output)
            #expect(arena.header(slot: slot).pointee.magic == VP_SLOT_MAGIC)
        }
        #expect(layout.totalSize == 4096 + 3 * layout.slotSize)
    }

    @Test func aSecondMappingSeesTheSameBytes() throws {
        let arena = try SharedArena(layout: layout)
        let copy = try SharedArena(attaching: try arena.descriptor.duplicate(), expecting: layout)
        arena.input(slot: 2, sample: 3)[17] = 42.5
        #expect(copy.input(slot: 2, sample: 3)[17] == 42.5)
        copy.output(slot: 1, batch: 4)[3999] = -1
        #expect(arena.output(slot: 1, sample: 3)[999] == -1)
        #expect(copy.baseAddress != arena.baseAddress)
    }

    @Test func attachingWithAnotherLayoutIsRefused() throws {
        let arena = try SharedArena(layout: layout)
        let other = SharedArena.Layout(slotCount: 3, maxBatch: 4, inputFloatsPerSample: 3 * 224 * 224, outputFloatsPerSample: 1001)
        #expect(throws: ArenaError.self) { try SharedArena(attaching: try arena.descriptor.duplicate(), expecting: other) }
    }

    @Test func theArenaIsAMemfdNoOneCanOpenByName() throws {
        let arena = try SharedArena(layout: layout)
        let target = try String(unsafeUninitializedCapacity: 256) { buffer in
            readlink("/proc/self/fd/\(arena.descriptor.rawValue)", buffer.baseAddress!, 256)
        }
        #expect(target.hasPrefix("/memfd:visionpool-arena"))
        #expect(fcntl(arena.descriptor.rawValue, F_GETFD) & FD_CLOEXEC != 0)
    }
}

extension String {
    init(unsafeUninitializedCapacity capacity: Int, readlink: (UnsafeMutableBufferPointer<CChar>) -> Int) throws {
        var buffer = [CChar](repeating: 0, count: capacity + 1)
        let count = buffer.withUnsafeMutableBufferPointer { readlink($0) }
        guard count >= 0 else { throw Errno(rawValue: errno) }
        self = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The seam GPU workers pin their slots through (`cudaHostRegister` there), run here with
/// `mlock` on the real arena: every page of every slot is locked, and released again.
@Suite struct HostMemoryPinningTests {
    @Test func pinningTheArenaLocksEverySlotOnceAndUnpinningReleasesIt() throws {
        let layout = SharedArena.Layout(slotCount: 3, maxBatch: 2, inputFloatsPerSample: 3 * 224 * 224, outputFloatsPerSample: 1000)
        let arena = try SharedArena(layout: layout)
        let before = try #require(lockedKilobytes())
        let region = try arena.pin(with: MemoryLock())
        #expect(region.baseAddress == UnsafeMutableRawPointer(mutating: arena.baseAddress) && region.count == layout.totalSize)
        #expect(lockedKilobytes().map { $0 - before } == layout.totalSize / 1024)
        // Every slot's tensors lie inside the pinned region.
        for slot in 0..<layout.slotCount {
            let output = arena.output(slot: slot, batch: layout.maxBatch)
            #expect(UnsafeRawPointer(output.baseAddress! + output.count) <= UnsafeRawPointer(region.baseAddress! + region.count))
        }
        try MemoryLock().unpin(region)
        #expect(lockedKilobytes() == before)
    }

    @Test func aRegionThatIsNotMappedIsAnError() throws {
        let unmapped = UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: 4096), count: 4096)
        #expect(throws: Errno.self) { try MemoryLock().pin(unmapped) }
    }
}
