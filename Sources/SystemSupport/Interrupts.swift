import Glibc
import SystemPackage

/// Runs a libc call that returns -1 and sets `errno` on failure, retrying on `EINTR`: the one
/// place the project retries interrupted calls, as swift-system's own helpers do.
@discardableResult
public func retryingOnInterrupt<Result: BinaryInteger>(_ call: () -> Result) throws(Errno) -> Result {
    while true {
        let result = call()
        if result != -1 { return result }
        let error = Errno(rawValue: errno)
        if error != .interrupted { throw error }
    }
}
