import Foundation
import InferenceEngines

/// The shape of a pool: how many workers, their threads and batches, and how it heals.
public struct PoolConfiguration: Sendable {
    public var model: EngineModel
    /// Engine kind, precision and cache; each worker runs `threadsPerWorker` threads.
    public var engine: EngineOptions
    public var workers: Int
    public var threadsPerWorker: Int
    /// Requests packed into one slot and run as one batch; 1 is plain per-request dispatch.
    public var maxBatch: Int
    /// How long a partly filled batch waits for more requests.
    public var batchDelay: Duration
    /// Slots in the shared arena; nil sizes it for two batches per worker plus two filling.
    public var slots: Int?
    /// Replace a worker gracefully after this many batches (leaks stay bounded).
    public var maxRequestsPerWorker: Int?
    /// Allow workers × threads above the CPU count (sets then overlap).
    public var oversubscribe: Bool
    /// Requests that may wait for a free slot; past this they are refused at once, so memory
    /// stays bounded under overload.
    public var maxWaitingRequests: Int = 256
    /// More crashes than this within `crashWindow` mark the pool unhealthy instead of respawning.
    public var crashLimit: Int
    public var crashWindow: Duration
    /// The executable spawned as `worker`: this program, unless a test says otherwise.
    public var workerExecutable: URL

    public init(
        model: EngineModel, engine: EngineOptions = EngineOptions(), workers: Int, threadsPerWorker: Int, maxBatch: Int = 1,
        batchDelay: Duration = .zero, slots: Int? = nil, maxRequestsPerWorker: Int? = nil, oversubscribe: Bool = false,
        crashLimit: Int = 5, crashWindow: Duration = .seconds(60),
        workerExecutable: URL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    ) {
        self.model = model
        self.engine = engine
        self.workers = workers
        self.threadsPerWorker = threadsPerWorker
        self.maxBatch = maxBatch
        self.batchDelay = batchDelay
        self.slots = slots
        self.maxRequestsPerWorker = maxRequestsPerWorker
        self.oversubscribe = oversubscribe
        self.crashLimit = crashLimit
        self.crashWindow = crashWindow
        self.workerExecutable = workerExecutable
    }

    /// Each batch size up to this is compiled and warmed in every worker (the engine keeps 16).
    public static let maxBatchLimit = 16

    /// Batches a worker may hold at once: one running, one queued, so it never waits on the front.
    static let depthPerWorker = 2

    public var slotCount: Int { slots ?? workers * Self.depthPerWorker + 2 }
}
