/// Why the pool could not run a request, or could not start.
public enum PoolError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidConfiguration(String)
    case startFailed(String)
    /// Workers crashed too often; the pool stopped replacing them.
    case unhealthy(String)
    /// A batch failed on two workers in a row, or the engine refused it.
    case inferenceFailed(String)
    case stopped
    /// Every slot is taken and the waiting line is full: try again shortly.
    case overloaded(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let reason): "invalid pool configuration: \(reason)"
        case .startFailed(let reason): "the worker pool could not start: \(reason)"
        case .unhealthy(let reason): "the worker pool is unhealthy: \(reason)"
        case .inferenceFailed(let reason): "inference failed: \(reason)"
        case .stopped: "the worker pool is stopping"
        case .overloaded(let reason): "the service is overloaded: \(reason)"
        }
    }
}
