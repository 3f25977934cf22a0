import Synchronization

/// Where a client's giving up (a gRPC call cancelled or past its deadline, an HTTP connection
/// closed) reaches the inference path: the path registers its abandonment once it runs, and a
/// giving up that came first is delivered then.
final class AbandonHook: Sendable {
    private enum State {
        case waiting
        case registered(@Sendable (ServerError) -> Void)
        case fired(ServerError)
    }

    private let state = Mutex(State.waiting)

    func set(_ abandon: @escaping @Sendable (ServerError) -> Void) {
        let early: ServerError? = state.withLock { state in
            if case .fired(let error) = state { return error }
            state = .registered(abandon)
            return nil
        }
        if let early { abandon(early) }
    }

    func fire(_ error: ServerError) {
        let abandon: (@Sendable (ServerError) -> Void)? = state.withLock { state in
            defer { state = .fired(error) }
            if case .registered(let abandon) = state { return abandon }
            return nil
        }
        abandon?(error)
    }
}
