import Dispatch
import Glibc
import Synchronization

/// A fixed number of worker threads fed from a bounded queue of accepted requests (beyond the reference).
///
/// The serving thread accepts and enqueues; a worker takes the request and runs `finishRequest`, reports a
/// thrown error through `server.handleError` on the worker's thread and always ends with
/// `server.shutdownRequest`. Workers start on demand, up to `workerCount`, and live until `serverClose()`.
///
/// Backpressure: when `queueCapacity` requests wait for a worker, the server disables its listener (new
/// connections wait in the kernel's backlog, datagrams in the socket's receive buffer) and enables it again
/// as soon as a worker takes one, so memory stays bounded and nothing spins.
///
/// Costs `workerCount` threads once, then one queue operation and one semaphore signal per request: cheaper
/// than `ThreadingMode` for many short requests, but a request waits while all workers are busy.
public final class ThreadPoolMode: ConcurrencyMode {
    /// What `serverClose()` does with requests still waiting in the queue.
    public enum QueuedRequestPolicy: Sendable {
        /// Handle them all (the listener is already closed), then stop the workers. The default.
        case drain
        /// Release them unhandled with `server.shutdownRequest` (a stream client reads end of file), then
        /// stop the workers once their current requests finish.
        case cancel
    }

    /// The most worker threads the pool runs.
    public let workerCount: Int
    /// The most accepted requests waiting for a worker before the server stops accepting.
    public let queueCapacity: Int
    /// What `serverClose()` does with queued requests.
    public let onClose: QueuedRequestPolicy

    private let state = SanitizedMutex(State())

    /// The number of processors online, the default `workerCount`.
    public static var defaultWorkerCount: Int { max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1) }

    /// Creates a pool.
    ///
    /// - Parameters:
    ///   - workers: the most worker threads; defaults to the number of processors online. At least 1.
    ///   - queueCapacity: how many accepted requests may wait for a worker; defaults to four per worker
    ///     (`Int.max` when that overflows). At least 1.
    ///   - onClose: what `serverClose()` does with requests still queued; `.drain` by default.
    public init(workers: Int = ThreadPoolMode.defaultWorkerCount, queueCapacity: Int? = nil, onClose: QueuedRequestPolicy = .drain) {
        let workerCount = max(workers, 1)
        self.workerCount = workerCount
        let fourPerWorker = workerCount.multipliedReportingOverflow(by: 4)
        self.queueCapacity = max(queueCapacity ?? (fourPerWorker.overflow ? Int.max : fourPerWorker.partialValue), 1)
        self.onClose = onClose
    }

    /// Requests accepted and waiting for a worker.
    public var queuedRequests: Int { state.withLock { $0.queue.count } }

    /// Requests a worker is handling right now.
    public var activeRequests: Int { state.withLock { $0.busyWorkers } }

    /// Worker threads currently started.
    public var startedWorkers: Int { state.withLock { $0.workers.count } }

    /// False while the queue is full.
    public var isAcceptingRequests: Bool { state.withLock { $0.queue.count < queueCapacity } }

    /// Queues the request for a worker, starting one if none is free and the pool is not at `workerCount`.
    ///
    /// With a full queue (possible only through `handleRequest()`, since `serveForever` stops accepting
    /// there) waits for room first.
    /// - Throws: `SocketError` when the pool has no worker and none can be created (`EAGAIN`).
    public func processRequest(_ request: Request, clientAddress: SocketAddress, server: BaseServer) throws {
        let job = Job(request: request, clientAddress: clientAddress, server: server)
        while true {
            let outcome = state.withLock { state -> EnqueueOutcome in
                guard state.queue.count < queueCapacity else {
                    let waiter = state.roomWaiter ?? DispatchSemaphore(value: 0)
                    state.roomWaiter = waiter
                    return .full(waiter)
                }
                state.queue.append(job)
                let needsWorker = state.workers.count < workerCount && state.queue.count > state.idleWorkers
                return .queued(state.jobsAvailable, needsWorker: needsWorker, depth: state.queue.count)
            }
            switch outcome {
            case .full(let waiter):
                waiter.wait()
            case .queued(let jobsAvailable, let needsWorker, let depth):
                if let observer = server.observer { observer.threadPoolQueueDepthChanged(depth) }
                if needsWorker { try startWorker() }
                jobsAvailable.signal()
                if !isAcceptingRequests { server.refreshAccepting() }
                return
            }
        }
    }

    /// Drains or cancels the queue as `onClose` says, then stops and joins every worker. Serving again
    /// afterwards starts new workers.
    public func serverClose(server: BaseServer) {
        let (cancelled, workers, jobsAvailable) = state.withLock { state -> ([Job], [OSThread], DispatchSemaphore) in
            var cancelled: [Job] = []
            if onClose == .cancel || server.closesImmediately {
                cancelled = Array(state.queue)
                state.queue.removeAll()
            }
            let workers = state.workers
            state.workers.removeAll()
            // Workers of the old generation exit once the queue is empty; new ones start for the next.
            state.generation &+= 1
            return (cancelled, workers, state.jobsAvailable)
        }
        for job in cancelled { job.server.shutdownRequest(job.request) }
        for _ in workers { jobsAvailable.signal() }
        for worker in workers { worker.join() }
        state.withLock { state in
            // Workers that exited on a stop signal may leave surplus signals behind; start clean next time.
            state.jobsAvailable = DispatchSemaphore(value: 0)
            state.idleWorkers = 0
        }
    }

    // MARK: - Internals

    private func startWorker() throws {
        // Counted as idle before it runs, so a burst of requests does not start more workers than needed.
        let (jobsAvailable, generation) = state.withLock { state in
            state.idleWorkers += 1
            return (state.jobsAvailable, state.generation)
        }
        do {
            let worker = try OSThread { [self] in runWorker(jobsAvailable: jobsAvailable, generation: generation) }
            state.withLock { $0.workers.append(worker) }
        } catch {
            let hasWorker = state.withLock { state -> Bool in
                state.idleWorkers -= 1
                return !state.workers.isEmpty
            }
            // With at least one worker the request still runs, only later; with none it would never run.
            if !hasWorker {
                state.withLock { _ = $0.queue.popLast() }
                throw error
            }
        }
    }

    /// A worker's life: take jobs until `serverClose()` moved on to a new `generation` and the queue is empty.
    /// (A worker that closes the pool itself, releasing the server's last reference, is detached, and ends
    /// here too.)
    private func runWorker(jobsAvailable: DispatchSemaphore, generation: Int) {
        while true {
            jobsAvailable.wait()
            let next = state.withLock { state -> (Job?, DispatchSemaphore?, Bool, Int) in
                guard let job = state.queue.popFirst() else { return (nil, nil, false, 0) }
                let reopened = state.queue.count == queueCapacity - 1
                state.idleWorkers -= 1
                state.busyWorkers += 1
                let waiter = state.roomWaiter
                state.roomWaiter = nil
                return (job, waiter, reopened, state.queue.count)
            }
            guard let job = next.0 else {
                // No job for this signal: only a stop signal leaves the queue empty.
                if state.withLock({ $0.generation != generation }) { return }
                continue
            }
            next.1?.signal()
            if let observer = job.server.observer { observer.threadPoolQueueDepthChanged(next.3) }
            if next.2 { job.server.refreshAccepting() }
            // A `closeWithoutDrain()` that came after `serverClose()` took the queue drops the rest of it too.
            if job.server.closesImmediately {
                job.server.shutdownRequest(job.request)
            } else {
                job.run()
            }
            state.withLock { state in
                state.busyWorkers -= 1
                state.idleWorkers += 1
            }
        }
    }

    private enum EnqueueOutcome {
        case full(DispatchSemaphore)
        case queued(DispatchSemaphore, needsWorker: Bool, depth: Int)
    }

    /// One accepted request waiting for a worker.
    ///
    /// A class, not a struct: `Request` is address-only (its `custom` case holds an `any Sendable`), so a
    /// struct holding it was copied through the runtime's generic value witnesses at every hand-off (into
    /// the queue, out of it, through the lock's result tuple): about 3,000 instructions per request against
    /// one allocation and a few reference counts for a class.
    private final class Job: Sendable {
        let request: Request
        let clientAddress: SocketAddress
        let server: BaseServer

        init(request: Request, clientAddress: SocketAddress, server: BaseServer) {
            self.request = request
            self.clientAddress = clientAddress
            self.server = server
        }

        /// Python's `process_request_thread`.
        func run() {
            do {
                try server.observedFinishRequest(request, clientAddress: clientAddress)
            } catch {
                server.handleError(error, clientAddress: clientAddress)
            }
            server.shutdownRequest(request)
        }
    }

    private struct State {
        var queue = RingQueue<Job>()
        var workers: [OSThread] = []
        /// One signal per queued job, plus one per worker at stop time.
        var jobsAvailable = DispatchSemaphore(value: 0)
        var idleWorkers = 0
        var busyWorkers = 0
        /// Bumped by each `serverClose()`; a worker started in an older generation stops when idle.
        var generation = 0
        /// The serving thread, waiting for room in `handleRequest()`.
        var roomWaiter: DispatchSemaphore?
    }
}

/// A FIFO queue with O(1) amortised push and pop, for the pool's bounded request queue.
struct RingQueue<Element> {
    private var storage: [Element?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ element: Element) {
        if count == storage.count {
            let old = storage
            storage = Array(repeating: nil, count: Swift.max(old.count * 2, 8))
            for index in 0..<count { storage[index] = old[(head + index) % old.count] }
            head = 0
        }
        storage[(head + count) % storage.count] = element
        count += 1
    }

    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let element = storage[head]
        storage[head] = nil
        head = (head + 1) % storage.count
        count -= 1
        return element
    }

    mutating func popLast() -> Element? {
        guard count > 0 else { return nil }
        let index = (head + count - 1) % storage.count
        let element = storage[index]
        storage[index] = nil
        count -= 1
        return element
    }

    mutating func removeAll() {
        storage = []
        head = 0
        count = 0
    }
}

extension RingQueue: Sequence {
    func makeIterator() -> AnyIterator<Element> {
        var index = 0
        return AnyIterator {
            guard index < count else { return nil }
            defer { index += 1 }
            return storage[(head + index) % storage.count]
        }
    }
}

extension RingQueue: Sendable where Element: Sendable {}
