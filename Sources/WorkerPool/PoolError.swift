/// Why the pool could not run a request; each case maps to a status a client can act on.
public enum PoolError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidConfiguration(String)
    case startFailed(String)
    /// No worker can serve now (they keep crashing); the pool goes on replacing them.
    case unavailable(String)
    /// A batch failed on two workers in a row, or the engine refused it.
    case inferenceFailed(String)
    /// A batch outran the worker timeout on two workers.
    case timedOut(String)
    case stopped
    /// Every slot is taken and the waiting line is full: try again shortly.
    case overloaded(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let reason): "invalid pool configuration: \(reason)"
        case .startFailed(let reason): "the worker pool could not start: \(reason)"
        case .unavailable(let reason): "no worker can serve now: \(reason)"
        case .inferenceFailed(let reason): "inference failed: \(reason)"
        case .timedOut(let reason): "inference timed out: \(reason)"
        case .stopped: "the worker pool is stopping"
        case .overloaded(let reason): "the service is overloaded: \(reason)"
        }
    }
}
