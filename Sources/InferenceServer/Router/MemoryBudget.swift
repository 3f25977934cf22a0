import SystemSupport
import Foundation
import Synchronization

/// The bytes all requests in flight may hold in the front at once: bodies being read, tensors
/// parsed from them, buffers for decoding their images. A request reserves what it will need
/// before it allocates it; past the limit it gets 503 with `Retry-After` (413 if it alone is
/// over the limit), so a burst of huge requests slows clients down instead of letting the
/// kernel kill the front, and every worker with it.
public final class MemoryBudget: Sendable {
    public let limit: Int
    private let held = Mutex(0)
    /// What requests hold, by the model they are for (one budget for the whole server).
    private let heldByModel = Mutex<[String: Int]>([:])

    public init(limit: Int) {
        precondition(limit > 0, "a memory budget must be positive")
        self.limit = limit
    }

    /// A quarter of the memory this process may use (the cgroup's limit where there is one,
    /// else the machine's), and never less than two of the largest requests: `largestRequest`
    /// is the largest body plus the largest tensor one request may parse.
    public static func defaultLimit(largestRequest: Int) -> Int {
        max(availableMemoryBytes() / 4, 2 * largestRequest)
    }

    /// Bytes held by requests now, for the metrics.
    public var heldBytes: Int { held.withLock { $0 } }

    /// Bytes held by requests for each model now, for the metrics.
    public var heldBytesByModel: [String: Int] { heldByModel.withLock { $0 } }

    /// Reserves `bytes` for one request for `model`, which gives them back with `release()`.
    func reserve(_ bytes: Int, for purpose: String, model: String) throws(ServerError) -> MemoryReservation {
        let reservation = MemoryReservation(budget: self, model: model)
        try reservation.grow(by: bytes, for: purpose)
        return reservation
    }

    /// Takes `bytes` more for a request for `model` that will then hold `requestTotal`.
    fileprivate func take(_ bytes: Int, requestTotal: Int, for purpose: String, model: String) throws(ServerError) {
        guard requestTotal <= limit else {
            throw ServerError(
                .contentTooLarge, "with \(purpose) the request needs \(requestTotal) bytes, more than the server's whole --max-inflight-bytes of \(limit)")
        }
        let taken = held.withLock { held in
            guard held + bytes <= limit else { return false }
            held += bytes
            return true
        }
        guard taken else {
            var error = ServerError(.serviceUnavailable, "the server is holding its --max-inflight-bytes of \(limit) bytes for other requests; retry shortly")
            error.headers[.retryAfter] = "1"
            throw error
        }
        heldByModel.withLock { $0[model, default: 0] += bytes }
    }

    fileprivate func give(_ bytes: Int, model: String) {
        held.withLock { $0 -= bytes }
        heldByModel.withLock { $0[model, default: 0] -= bytes }
    }
}

/// What one request holds of the budget; it grows as the request learns what it needs.
final class MemoryReservation: Sendable {
    private let budget: MemoryBudget
    private let model: String
    private let bytes = Mutex(0)

    fileprivate init(budget: MemoryBudget, model: String) {
        self.budget = budget
        self.model = model
    }

    /// Takes `more` bytes before `purpose` (e.g. "the FP32 tensor") allocates them.
    func grow(by more: Int, for purpose: String) throws(ServerError) {
        guard more > 0 else { return }
        try budget.take(more, requestTotal: bytes.withLock { $0 } + more, for: purpose, model: model)
        bytes.withLock { $0 += more }
    }

    /// Gives back what was reserved beyond `needed` (a body shorter than its estimate).
    func shrink(to needed: Int) {
        let surplus = bytes.withLock { bytes in
            let surplus = max(0, bytes - needed)
            bytes -= surplus
            return surplus
        }
        budget.give(surplus, model: model)
    }

    /// Gives everything back; the request is over.
    func release() {
        shrink(to: 0)
    }
}

/// The memory this process may use: its tightest cgroup memory limit (v1 or v2) when one is
/// set, else the machine's physical memory (`sysconf(_SC_PHYS_PAGES)`).
func availableMemoryBytes() -> Int {
    let physical = sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE))
    return min(Cgroups.memoryLimitBytes() ?? physical, physical)
}
