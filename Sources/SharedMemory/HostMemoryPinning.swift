import Glibc
import SystemPackage

/// Page-locks host memory so a device can reach it by DMA, and releases it. The worker pins its
/// view of the arena through this seam before serving a GPU: CUDA's `cudaHostRegister` in a
/// GPU worker, `mlock` where a machine has no GPU (the same path, on plain memory).
public protocol HostMemoryPinning {
    func pin(_ region: UnsafeMutableRawBufferPointer) throws
    func unpin(_ region: UnsafeMutableRawBufferPointer) throws
}

/// Page-locking by the kernel alone (`mlock`, `munlock`): what `cudaHostRegister` does for the
/// host's side, without a device to map the pages for.
public struct MemoryLock: HostMemoryPinning {
    public init() {}

    public func pin(_ region: UnsafeMutableRawBufferPointer) throws {
        guard mlock(region.baseAddress, region.count) == 0 else { throw Errno(rawValue: errno) }
    }

    public func unpin(_ region: UnsafeMutableRawBufferPointer) throws {
        guard munlock(region.baseAddress, region.count) == 0 else { throw Errno(rawValue: errno) }
    }
}

extension SharedArena {
    /// The whole mapping: every slot's input and output, page-aligned as mapped.
    public var mappedRegion: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(mutating: baseAddress), count: layout.totalSize)
    }

    /// Pins this process's view of the arena with `pinning`, once for all slots: a GPU worker's
    /// copies to and from any slot then run at full DMA speed. Returns the pinned region, to
    /// unpin before the mapping goes.
    @discardableResult
    public func pin(with pinning: some HostMemoryPinning) throws -> UnsafeMutableRawBufferPointer {
        let region = mappedRegion
        try pinning.pin(region)
        return region
    }
}
