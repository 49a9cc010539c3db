import Dispatch
import Glibc
import Synchronization

/// A thread per request: Python's `ThreadingMixIn`, plus an optional cap on concurrent requests.
///
/// Each request runs `finishRequest` on a new POSIX thread, which reports a thrown error through
/// `server.handleError` on that same thread and always ends with `server.shutdownRequest`. The serving
/// thread goes straight back to the loop, so a slow handler delays nobody else.
///
/// Bookkeeping stays bounded however many requests the server has served (CPython bpo-37193): only threads
/// `serverClose()` will join are remembered, and a thread that has finished is joined and dropped at the
/// next request or loop tick. Costs one thread creation (and its stack, 8 MiB of address space by default)
/// per request; for many short requests `ThreadPoolMode` is cheaper.
///
/// **Thread reuse** (`reuseThreads: n`, off by default): a handler thread that finished its request parks,
/// up to `n` parked threads, and the next request runs on a parked thread instead of a new one (a thread
/// that finds `n` already parked ends as usual). What carries over between the requests of one thread:
/// its thread-local state (`pthread` keys, Foundation's `Thread.current.threadDictionary`, `errno`, the
/// thread name, signal mask and scheduling settings a handler changed); there are no task-locals (handlers
/// run outside Swift concurrency). Nothing else: every request still gets a new handler object.
/// `daemonThreads` and `blockOnClose` keep their meaning (a parked thread takes only requests of its own
/// kind, joinable or detached); `serverClose()` wakes every parked thread, which then ends, and joins the
/// joinable ones.
///
/// ```swift
/// let server = try TCPServer(.loopback(port: 8000), handler: EchoHandler.self,
///                            mode: ThreadingMode(maxConcurrentRequests: 256))
/// ```
public final class ThreadingMode: ConcurrencyMode {
    /// The most requests handled at once, or nil for no limit (the reference has none). At the cap the
    /// server disables its listener until a request finishes; connections wait in the kernel's backlog.
    public let maxConcurrentRequests: Int?
    /// The most finished handler threads kept parked for the next request; 0 (the default, the reference's
    /// design): every request gets a new thread.
    public let reuseThreads: Int
    /// The largest `reuseThreads` accepted; larger values are treated as this.
    public static let maxReusedThreads = 1024

    private let daemonThreadsFlag: Atomic<Bool>
    private let blockOnCloseFlag: Atomic<Bool>
    private let state = SanitizedMutex(State())

    /// Creates the mode with the reference's defaults.
    ///
    /// - Parameters:
    ///   - daemonThreads: Python's `daemon_threads`: when true, handler threads are detached and
    ///     `serverClose()` never waits for them. Default false.
    ///   - blockOnClose: Python's `block_on_close`: when true, `serverClose()` joins every non-daemon handler
    ///     thread still running. Default true.
    ///   - maxConcurrentRequests: a cap on requests in flight; nil (the default) means none. Values below 1
    ///     are treated as 1.
    public convenience init(daemonThreads: Bool = false, blockOnClose: Bool = true, maxConcurrentRequests: Int? = nil) {
        self.init(
            daemonThreads: daemonThreads, blockOnClose: blockOnClose, maxConcurrentRequests: maxConcurrentRequests,
            reuseThreads: 0)
    }

    /// Creates the mode with thread reuse: as `init(daemonThreads:blockOnClose:maxConcurrentRequests:)`, and
    /// up to `reuseThreads` finished threads are kept parked for the next requests (see the type's
    /// documentation); 0 starts a thread per request. Values outside 0...`maxReusedThreads` are clamped.
    public init(
        daemonThreads: Bool = false,
        blockOnClose: Bool = true,
        maxConcurrentRequests: Int? = nil,
        reuseThreads: Int
    ) {
        self.daemonThreadsFlag = Atomic(daemonThreads)
        self.blockOnCloseFlag = Atomic(blockOnClose)
        self.maxConcurrentRequests = maxConcurrentRequests.map { max($0, 1) }
        self.reuseThreads = min(max(reuseThreads, 0), Self.maxReusedThreads)
    }

    /// Python's `daemon_threads`: whether new handler threads are detached, so that `serverClose()` does not
    /// wait for them. Read when each request starts. (A Swift process ends every thread when it exits, so
    /// unlike Python this never keeps the process alive.)
    public var daemonThreads: Bool {
        get { daemonThreadsFlag.load(ordering: .relaxed) }
        set { daemonThreadsFlag.store(newValue, ordering: .relaxed) }
    }

    /// Python's `block_on_close`: whether `serverClose()` waits for non-daemon handler threads. Threads
    /// started while it is false are detached and never waited for.
    public var blockOnClose: Bool {
        get { blockOnCloseFlag.load(ordering: .relaxed) }
        set { blockOnCloseFlag.store(newValue, ordering: .relaxed) }
    }

    /// How many requests are being handled right now, daemon or not.
    public var activeRequests: Int { state.withLock { $0.activeCount } }

    /// How many threads the mode remembers for joining: running non-daemon ones plus finished ones not yet
    /// joined. Bounded by the requests in flight, never by the requests served.
    package var trackedThreadCount: Int { state.withLock { $0.running.count + $0.finished.count } }

    /// How many threads are parked for reuse right now (at most `reuseThreads`).
    public var parkedThreadCount: Int { state.withLock { $0.parked.count } }

    /// How many handler threads this mode has started so far.
    package var threadsStarted: Int { state.withLock { $0.threadsStarted } }

    /// False while `maxConcurrentRequests` requests are in flight.
    public var isAcceptingRequests: Bool {
        guard let cap = maxConcurrentRequests else { return true }
        return state.withLock { $0.activeCount < cap }
    }

    /// Starts a thread that runs `finishRequest`, `handleError` on failure, and always `shutdownRequest`.
    ///
    /// At the cap (possible only through `handleRequest()`, since `serveForever` stops accepting there)
    /// waits for a running request to finish first.
    /// - Throws: `SocketError` when no thread can be created (`EAGAIN`); the server then reports it and
    ///   shuts the request down.
    public func processRequest(_ request: Request, clientAddress: SocketAddress, server: BaseServer) throws {
        joinFinishedThreads()
        waitForFreeSlot()
        let joinable = !daemonThreads && blockOnClose
        let job = Job(request: request, clientAddress: clientAddress)
        if reuseThreads > 0, let parked = state.withLock({ state -> ParkedThread? in
            guard let index = state.parked.lastIndex(where: { $0.joinable == joinable }) else { return nil }
            let parked = state.parked.remove(at: index)
            parked.job = job
            state.activeCount += 1
            return parked
        }) {
            parked.wake.signal()
            if !isAcceptingRequests { server.refreshAccepting() }
            return
        }
        let identifier = state.withLock { state -> Int in
            state.activeCount += 1
            state.nextIdentifier &+= 1
            state.threadsStarted &+= 1
            return state.nextIdentifier
        }
        let thread: OSThread
        do {
            if reuseThreads > 0 {
                thread = try OSThread(detached: !joinable) { [self] in
                    let parked = ParkedThread(joinable: joinable)
                    var next: Job? = job
                    while let current = next {
                        Self.runRequest(current.request, clientAddress: current.clientAddress, server: server)
                        next = requestFinished(identifier, joinable: joinable, server: server, parking: parked)
                    }
                }
            } else {
                thread = try OSThread(detached: !joinable) { [self] in
                    Self.runRequest(request, clientAddress: clientAddress, server: server)
                    _ = requestFinished(identifier, joinable: joinable, server: server, parking: nil)
                }
            }
        } catch {
            state.withLock { $0.activeCount -= 1 }
            throw error
        }
        if joinable {
            state.withLock { state in
                if state.finishedBeforeRegistration.remove(identifier) != nil {
                    state.finished.append(thread)
                } else {
                    state.running[identifier] = thread
                }
            }
        }
        if !isAcceptingRequests { server.refreshAccepting() }
    }

    /// Joins the threads that have finished, so their stacks are freed between requests too.
    public func serviceActions(server: BaseServer) {
        joinFinishedThreads()
    }

    /// When `blockOnClose`, waits for every remembered handler thread; otherwise lets them run on (each
    /// detaches itself when it finishes).
    public func serverClose(server: BaseServer) {
        // Parked threads end now (their `job` stays nil); the joinable ones are joined below with the rest.
        let parked = state.withLock { state -> [ParkedThread] in
            state.isClosing = true
            let parked = state.parked
            state.parked.removeAll()
            return parked
        }
        // `isClosing` stays set: a thread still running now (not joined when `blockOnClose` is false) must end
        // when it finishes instead of parking where nobody would wake it.
        for thread in parked { thread.wake.signal() }
        let waitFor = state.withLock { state -> [OSThread] in
            var threads = state.finished
            state.finished.removeAll()
            if blockOnClose {
                threads.append(contentsOf: state.running.values)
            } else {
                state.orphaned.formUnion(state.running.keys)
            }
            state.running.removeAll()
            return threads
        }
        for thread in waitFor { thread.join() }
    }

    // MARK: - Internals

    /// The body of a handler thread: Python's `process_request_thread`.
    private static func runRequest(_ request: Request, clientAddress: SocketAddress, server: BaseServer) {
        do {
            try server.observedFinishRequest(request, clientAddress: clientAddress)
        } catch {
            server.handleError(error, clientAddress: clientAddress)
        }
        server.shutdownRequest(request)
    }

    /// Last thing a handler thread does after a request: frees its slot, then either parks (`parking`, while
    /// fewer than `reuseThreads` are parked and the mode is not closing) and returns the next request it is
    /// given, or hands itself over for joining and returns nil.
    private func requestFinished(
        _ identifier: Int,
        joinable: Bool,
        server: BaseServer,
        parking: ParkedThread?
    ) -> Job? {
        let (reopened, waiter, parks) = state.withLock { state -> (Bool, DispatchSemaphore?, Bool) in
            let wasFull = maxConcurrentRequests.map { state.activeCount >= $0 } ?? false
            state.activeCount -= 1
            let waiter = state.slotWaiter
            state.slotWaiter = nil
            guard let parking, !state.isClosing, state.parked.count < reuseThreads else { return (wasFull, waiter, false) }
            state.parked.append(parking)
            return (wasFull, waiter, true)
        }
        waiter?.signal()
        if reopened { server.refreshAccepting() }
        if let parking, parks {
            parking.wake.wait()
            if let job = state.withLock({ _ in parking.takeJob() }) { return job }
        }
        retire(identifier, joinable: joinable)
        return nil
    }

    /// A handler thread that ends hands itself over for joining (or detaches itself when nobody will join it).
    private func retire(_ identifier: Int, joinable: Bool) {
        let orphaned = state.withLock { state -> Bool in
            guard joinable else { return false }
            if let thread = state.running.removeValue(forKey: identifier) {
                state.finished.append(thread)
            } else if state.orphaned.remove(identifier) != nil {
                return true
            } else {
                state.finishedBeforeRegistration.insert(identifier)
            }
            return false
        }
        // `serverClose()` gave up on this thread (blockOnClose was false by then): nobody will join it.
        if orphaned { _ = pthread_detach(pthread_self()) }
    }

    private func joinFinishedThreads() {
        let finished = state.withLock { state -> [OSThread] in
            let finished = state.finished
            state.finished.removeAll(keepingCapacity: true)
            return finished
        }
        for thread in finished { thread.join() }
    }

    /// Blocks while the cap is reached; only `handleRequest()` can get here at the cap.
    private func waitForFreeSlot() {
        guard let cap = maxConcurrentRequests else { return }
        while let waiter = state.withLock({ state -> DispatchSemaphore? in
            guard state.activeCount >= cap else { return nil }
            let waiter = state.slotWaiter ?? DispatchSemaphore(value: 0)
            state.slotWaiter = waiter
            return waiter
        }) {
            waiter.wait()
        }
    }

    private struct State {
        var nextIdentifier = 0
        /// Requests in flight, on joinable and detached threads alike.
        var activeCount = 0
        /// Joinable threads still running, by identifier.
        var running: [Int: OSThread] = [:]
        /// Joinable threads that have finished their work and wait to be joined.
        var finished: [OSThread] = []
        /// Threads that finished before `processRequest` had registered them.
        var finishedBeforeRegistration: Set<Int> = []
        /// Running joinable threads `serverClose()` will not join; they detach themselves when done.
        var orphaned: Set<Int> = []
        /// The serving thread, waiting for a free slot in `handleRequest()`.
        var slotWaiter: DispatchSemaphore?
        /// Finished threads waiting for a request (`reuseThreads`), the most recently parked last.
        var parked: [ParkedThread] = []
        /// `serverClose()` ran: no thread parks any more.
        var isClosing = false
        var threadsStarted = 0
    }

    /// A request handed to a thread.
    private struct Job: Sendable {
        let request: Request
        let clientAddress: SocketAddress
    }

    /// A handler thread parked for its next request. `job` is read and written only under the mode's
    /// `state` lock; `wake` is signalled once per hand-over (with a job) or at `serverClose()` (without).
    private final class ParkedThread: @unchecked Sendable {
        let wake = DispatchSemaphore(value: 0)
        let joinable: Bool
        var job: Job?

        init(joinable: Bool) { self.joinable = joinable }

        /// The job handed over, cleared; under the mode's lock.
        func takeJob() -> Job? {
            defer { job = nil }
            return job
        }
    }
}
