import Foundation
import EngineInterface
import Logging

/// The shape of a pool: how many workers, their threads and batches, and how it heals.
public struct PoolConfiguration: Sendable {
    public var model: EngineModel
    /// Engine kind, precision and cache; each worker runs `threadsPerWorker` threads.
    public var engine: EngineOptions
    public var workers: Int
    public var threadsPerWorker: Int
    /// The devices workers spread over, seat by seat (seat i on `devices[i % count]`); empty:
    /// every worker on `engine.device`.
    public var devices: [Device] = []
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
    /// CPUs kept for the front (decoding, HTTP): the last this many of the affinity mask. The
    /// pool places its workers on the others and pins this process's threads to these, so
    /// decoding never takes an engine's CPU. 0: the front runs on every CPU, beside the workers.
    public var frontCPUs = 0
    /// CPU workers lock the arena's pages in RAM (`mlock`), as GPU workers always pin them for
    /// DMA (`cudaHostRegister`): no slot is ever swapped out or faulted in under a batch.
    public var lockSlots = false
    /// Workers count the kernels their engine runs and report them (`PoolStatus.Worker.engine`).
    public var countKernels = false
    /// The CPUs of each worker, decided by the caller (a server of several models divides the
    /// machine between their pools); nil: the pool places its workers on the CPUs this process
    /// may use (`CPUPlacement`).
    public var cpuSets: [[Int]]?
    /// Batches a worker holds at once (nil: `depthPerWorker`). 1 binds a batch to a worker only
    /// when it is free, so none waits behind a busy worker while another idles; 2 queues one
    /// behind the running one, so a worker never waits on the front's wake-up chain. At 70 %
    /// load 2 gave the lower p99 (docs/PERFORMANCE.md): the chain cost more than the binding.
    public var workerQueueDepth: Int?
    /// Requests that may wait for a free slot; past this they are refused at once, so memory
    /// stays bounded under overload.
    public var maxWaitingRequests: Int = 256
    /// A seat whose replacements crash this many times in a row is in a crash loop: before
    /// the pool was first ready that fails `start()`; afterwards requests are refused (503)
    /// while no worker is ready, and the pool keeps retrying with capped back-off.
    public var crashLimit: Int
    /// With no ready worker for this long (after the pool was ready once), the pool reports
    /// itself not live, so that an orchestrator restarts the process.
    public var livenessTimeout: Duration
    /// A batch running longer than this on a worker gets the worker killed and replaced and
    /// the batch retried once elsewhere; nil: ten times the worker's own warm-up batch time,
    /// at least `minimumWorkerTimeout`.
    public var workerTimeout: Duration?
    /// The worker program: `visionpool-worker` beside the running executable, unless a test
    /// says otherwise. It is opened once, so replacing its file later does not change what
    /// respawns run.
    public var workerExecutable: URL
    /// Where the supervisor reports crashes, replacements and timeouts.
    public var logger: Logger

    public init(
        model: EngineModel, engine: EngineOptions = EngineOptions(), workers: Int, threadsPerWorker: Int, maxBatch: Int = 1,
        batchDelay: Duration = .zero, slots: Int? = nil, maxRequestsPerWorker: Int? = nil, oversubscribe: Bool = false,
        crashLimit: Int = 5, livenessTimeout: Duration = .seconds(60), workerTimeout: Duration? = nil,
        workerExecutable: URL = PoolConfiguration.installedWorker,
        logger: Logger = Logger(label: "visionpool.pool", factory: { StreamLogHandler.standardError(label: $0) })
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
        self.livenessTimeout = livenessTimeout
        self.workerTimeout = workerTimeout
        self.workerExecutable = workerExecutable
        self.logger = logger
    }

    /// `visionpool-worker` in the folder of the running executable: the build and an install
    /// put the two programs side by side.
    public static var installedWorker: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("visionpool-worker")
    }

    /// Each batch size up to this is compiled and warmed in every worker (the engine keeps 16).
    public static let maxBatchLimit = 16

    /// The most batches a worker may hold at once: one running, one queued, so it never waits on the front.
    public static let depthPerWorker = 2

    /// Batches each worker holds: `workerQueueDepth`, else two.
    var queueDepth: Int { workerQueueDepth ?? Self.depthPerWorker }

    /// The least derived worker timeout: a batch that warmed up in milliseconds may still be
    /// slowed by a neighbour compiling its engine.
    public static let minimumWorkerTimeout = Duration.seconds(5)


    public var slotCount: Int { slots ?? workers * Self.depthPerWorker + 2 }

    /// The engine a worker in `seat` builds: its device and its own thread count.
    func engine(seat: Int) -> EngineOptions {
        var options = engine
        options.threads = threadsPerWorker
        if !devices.isEmpty { options.device = devices[seat % devices.count] }
        return options
    }
}
