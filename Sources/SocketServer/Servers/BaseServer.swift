import Dispatch
import Glibc
import Logging
import Synchronization

/// The base of every server: the serve loop, shutdown, and the hooks a subclass overrides.
///
/// Python's `socketserver.BaseServer`. It knows nothing about sockets: it waits for `fileDescriptor` to
/// become readable on a libevent loop, then runs `getRequest` → `verifyRequest` → `processRequest` (which
/// hands the request to the server's `ConcurrencyMode`) → `finishRequest` (the request handler) →
/// `shutdownRequest` → `closeRequest`, calling `handleError` when the handler throws. A subclass that takes
/// requests from somewhere other than a listening socket overrides `fileDescriptor` and `getRequest()`.
///
/// Configure a server before serving it; `shutdown()` and `serverClose()` are the calls meant for other
/// threads.
///
/// ## Life cycle
/// A server moves through `LifecycleState`: `created` → `bound` (a socket server after `serverBind()`) →
/// `serving` (inside `serveForever()` or `handleRequest()`) → back to `bound`/`created` when that returns →
/// `closing` → `closed`. `closed` is final: `serveForever()` and `handleRequest()` then throw
/// `SocketServerError.serverClosed` at once. `serverClose()` stops serving first (it calls `shutdown()` when
/// another thread serves), is safe to call twice or from two threads at once (the second call waits until
/// the first has finished), and runs from `deinit` when nobody called it, so a dropped server releases what
/// its mode holds (threads joined, children reaped, event loops stopped).
///
/// ## Threads
/// `serveForever`, `handleRequest` and the hooks they call directly (`getRequest`, `verifyRequest`,
/// `processRequest`, `serviceActions`, `handleTimeout`) run on the serving thread. `finishRequest`,
/// `handleError`, `shutdownRequest` and `closeRequest` run wherever the mode runs a request: the serving
/// thread (synchronous), a handler thread (threading), a worker thread (pool), the child process (forking),
/// or one of the event loops (event mode) — so, in every mode but synchronous, on several threads at once.
/// Connections a handler parked between requests (`StreamRequestHandler.parkConnection(idleTimeout:)`)
/// wait on the serving thread's loop: `processRequest` for their next request, and `shutdownRequest` or
/// `closeRequest` when they idle out or the client closes, run on the serving thread.
open class BaseServer: @unchecked Sendable {
    /// The address the server serves; after binding, the bound address (port 0 becomes the real port).
    public var serverAddress: SocketAddress
    /// The handler class instantiated for each request (Python's `RequestHandlerClass`).
    ///
    /// For a server whose handlers come from a `makeHandler` factory, or whose mode makes its own
    /// (`EventMode`, created with `eventHandler:`), this is `BaseRequestHandler.self`, never instantiated.
    public var requestHandlerType: BaseRequestHandler.Type {
        if case .type(let type) = handlerSource { return type }
        return BaseRequestHandler.self
    }
    /// Where `finishRequest` gets each request's handler. Set during initialisation only.
    var handlerSource: HandlerSource
    /// How accepted requests run: synchronously (the default), on threads, in child processes, ...
    public let mode: any ConcurrencyMode
    /// Where `handleError` and the server's own diagnostics go. Replace it to route or silence them.
    public var logger: Logger
    /// What the server reports its connections, requests and load to (metrics); nil, the default, costs a
    /// nil check per event. Set before serving, never while serving. See `ServerObserver` for which thread
    /// runs each callback. (Read on every readiness and request: no runtime exclusivity check, as it is not
    /// changed while serving.)
    @exclusivity(unchecked) public var observer: (any ServerObserver)?
    /// The PROXY protocol settings of a stream server (`TCPServer.proxyProtocol`); nil for every other.
    /// When set, `verifyRequest` runs after the header was read, where the request runs, not here.
    package var proxyProtocolSettings: ProxyProtocolConfiguration?
    /// How long `handleRequest()` waits before calling `handleTimeout()`; nil waits for ever.
    /// `serveForever` ignores it, as in Python.
    open var timeout: Duration?

    private let lifecycle = SanitizedMutex(Lifecycle())
    private let closesImmediatelyFlag = Atomic(false)
    /// Whether a shutdown was asked for: stored only inside `lifecycle`'s lock, so a reader holding the lock sees
    /// it consistent with the rest of the state; loaded without the lock once per readiness of the server's
    /// descriptor.
    private let shutdownFlag = Atomic(false)
    private let securityStorage = SanitizedMutex<(any ConnectionSecurity)?>(nil)
    // Touched only on the loop's thread, inside `serveForever`.
    private var readinessEvent: LoopEvent?
    /// Connections handed back between requests (`parkConnection`); see `BaseServer+Parking.swift`.
    let parking = ParkedConnections()
    private var isBackingOff = false
    // Set from the first failed accept of an exhaustion episode until an accept succeeds: one warning each.
    private var isInBackoffEpisode = false

    /// Creates a server for `serverAddress` whose requests are handled by instances of `handler`.
    ///
    /// - Parameters:
    ///   - serverAddress: where to serve; kept as given until a subclass binds.
    ///   - handler: the request handler class.
    ///   - mode: the concurrency mode; defaults to `SynchronousMode`, one request at a time.
    ///   - logger: the logger for errors and diagnostics; defaults to a `Logger` labelled `SocketServer`.
    public init(
        serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        mode: (any ConcurrencyMode)? = nil,
        logger: Logger? = nil
    ) {
        self.serverAddress = serverAddress
        self.handlerSource = .type(handler)
        self.mode = mode ?? SynchronousMode()
        self.logger = logger ?? Logger(label: "SocketServer")
    }

    /// Creates a server for `serverAddress` whose handler for each request is made by `makeHandler`.
    ///
    /// - Parameters:
    ///   - serverAddress: where to serve; kept as given until a subclass binds.
    ///   - mode: the concurrency mode; defaults to `SynchronousMode`, one request at a time.
    ///   - logger: the logger for errors and diagnostics; defaults to a `Logger` labelled `SocketServer`.
    ///   - makeHandler: builds the handler for one request from its context and whatever the closure
    ///     captured; called by `finishRequest`, on the thread that runs the request. An error it throws
    ///     goes to `handleError` like a handler's. Nil when the mode makes its own handlers (`EventMode`).
    public init(
        serverAddress: SocketAddress,
        mode: (any ConcurrencyMode)? = nil,
        logger: Logger? = nil,
        makeHandler: (@Sendable (HandlerContext) throws -> BaseRequestHandler)?
    ) {
        self.serverAddress = serverAddress
        self.handlerSource = makeHandler.map { .factory($0) } ?? .mode
        self.mode = mode ?? SynchronousMode()
        self.logger = logger ?? Logger(label: "SocketServer")
    }

    /// A server dropped without `serverClose()` closes here: `serverClose()` runs (and with it any override
    /// of it), so the mode joins its threads, reaps its children or stops its event loops. This blocks the
    /// thread that released the last reference for as long as `serverClose()` would.
    deinit {
        if lifecycle.withLock({ $0.phase != .closed }) {
            serverClose()
        }
    }

    // MARK: - Caller API

    /// Handles requests until `shutdown()` is called.
    ///
    /// Waits on a libevent loop without polling: a request wakes it, `shutdown()` wakes it at once, and
    /// `serviceActions()` runs after every request and at least once per `pollInterval`. A request that
    /// becomes ready after `shutdown()` was called is left for the next `serveForever`, never handled.
    /// When `shutdown()` was called while the server was not serving, returns immediately (as Python).
    /// - Throws: `SocketServerError.serverClosed` after `serverClose()`, `.alreadyServing` while another
    ///   thread serves; what `verifyRequest` or a custom `getRequest` throws (other than `SocketError`): the
    ///   loop stops and the error propagates, as in Python.
    public func serveForever(pollInterval: Duration = .milliseconds(500)) throws {
        guard let loop = try beginServing(forever: true) else { return }
        var failure: (any Error)?
        let readiness = LoopEvent(loop: loop, descriptor: fileDescriptor, flags: [.read, .persist]) { [unowned self] _ in
            if let error = self.serveReadiness(on: loop) {
                failure = error
                loop.exit()
            }
        }
        let ticker = LoopEvent(timerOn: loop, repeating: true) { [unowned self] _ in
            if self.isShutdownRequested { loop.exit() }
            self.serviceActions()
        }
        readinessEvent = readiness
        isBackingOff = false
        applyAccepting()
        ticker.add(timeout: pollInterval)
        loop.run()
        ticker.remove()
        readiness.remove()
        servingStopped()
        readinessEvent = nil
        backoffTimer = nil
        closeParkedConnections()
        endServing()
        if let failure { throw failure }
    }

    /// One readiness of the server's descriptor in `serveForever` (Python's loop body: the shutdown check, one
    /// `_handle_request_noblock`, `service_actions`); a datagram server handles a batch. On the serving
    /// thread. Returns the error that stops serving, if any.
    ///
    /// The hot path of every mode's accept and of every datagram: the shutdown flag is an atomic load (no
    /// lock) and the observer is read once.
    private func serveReadiness(on loop: EventLoop) -> (any Error)? {
        guard !isShutdownRequested else {
            loop.exit()
            return nil
        }
        if observer == nil { return handleReadiness(on: loop) }
        let tickStart = ContinuousClock.now
        defer { observer?.loopTicked(duration: ContinuousClock.now - tickStart) }
        return handleReadiness(on: loop)
    }

    /// `serveReadiness` past its shutdown check and around the observer's tick timing.
    private func handleReadiness(on loop: EventLoop) -> (any Error)? {
        do {
            try handleReadyRequests(loop: loop)
        } catch {
            return error
        }
        // A mode that reached its capacity stops the listener now, even if it did not ask; resumed
        // parked connections get the next free slot.
        parking.dispatchedSinceAccept = 0
        if !mode.isAcceptingRequests || parking.hasResumed {
            if let observer, !mode.isAcceptingRequests { observer.connectionRejected(.maxConnections) }
            applyAccepting()
        }
        serviceActions()
        return nil
    }

    /// The state of the server's life; see the class documentation. Safe from any thread.
    public var lifecycleState: LifecycleState {
        lifecycle.withLock { state in
            switch state.phase {
            case .closing: .closing
            case .closed: .closed
            case .created, .bound:
                state.servingThread != nil || state.handlingThread != nil
                    ? .serving : (state.phase == .bound ? .bound : .created)
            }
        }
    }

    /// Stops `serveForever` and waits until it has returned.
    ///
    /// Wakes the loop at once (no poll interval to wait out). Called from the serving thread itself, for
    /// example from a handler of a synchronous server, it cannot wait for itself: it asks the loop to stop
    /// after the current request and returns at once. Called while nothing serves, it makes the next
    /// `serveForever` return immediately, as in Python, and returns without waiting.
    public func shutdown() {
        // Not while a forking server forks: this usually runs on another thread (a signal watcher) while the
        // serving thread still forks, and the first run of this code takes runtime locks (metadata, `once`)
        // that a child forked meanwhile would inherit held and wait on for ever. The wait is outside.
        var waiter: DispatchSemaphore?
        ForkExclusion.excludingForks { waiter = beginShutdown() }
        waiter?.wait()
    }

    /// The first half of `shutdown()`: asks `serveForever` to stop and returns what to wait on until it has
    /// returned (nil when nothing serves, or on the serving thread itself). For a caller that must ask while
    /// no fork runs (inside `ForkExclusion.excludingForks`) and wait after.
    package func beginShutdown() -> DispatchSemaphore? {
        lifecycle.withLock { state in
            shutdownFlag.store(true, ordering: .releasing)
            guard let thread = state.servingThread, let loop = state.loop else { return nil }
            loop.exit()
            if pthread_equal(thread, pthread_self()) != 0 { return nil }
            let semaphore = DispatchSemaphore(value: 0)
            state.shutdownWaiters.append(semaphore)
            return semaphore
        }
    }

    /// Asks `serveForever` to stop, like `shutdown()`, without waiting for it: safe from any thread,
    /// including a cancellation handler that must not block.
    package func requestShutdown() {
        lifecycle.withLock { state in
            shutdownFlag.store(true, ordering: .releasing)
            if state.servingThread != nil { state.loop?.exit() }
        }
    }

    /// Stops accepting now and lets `serveForever` return without waiting: the graceful half of a
    /// swift-service-lifecycle shutdown (`SocketServerLifecycle`). Safe from any thread.
    package func stopAccepting() {
        requestShutdown()
    }

    /// Stops accepting and makes the coming `serverClose()` skip its drain (event-mode connections are
    /// closed at once, a pool's queued requests dropped): a cancelled `SocketServerService`. Safe from any
    /// thread, including a cancellation handler.
    package func closeWithoutDrain() {
        closesImmediatelyFlag.store(true, ordering: .sequentiallyConsistent)
        requestShutdown()
    }

    /// Whether `closeWithoutDrain()` was called: read by the modes in `serverClose(server:)`.
    package var closesImmediately: Bool { closesImmediatelyFlag.load(ordering: .sequentiallyConsistent) }

    /// Whether `serveForever` is running.
    public var isServing: Bool { lifecycle.withLock { $0.servingThread != nil } }

    /// Waits for and handles one request, or calls `handleTimeout()` when none arrives in time.
    ///
    /// The wait is the smaller of `timeout` and the listening socket's own timeout; with neither it waits
    /// for ever. `serviceActions()` is not called.
    /// - Throws: `SocketServerError.serverClosed` after `serverClose()` (or when it is called meanwhile from
    ///   another thread, which wakes the wait), `.alreadyServing` while another thread serves; what
    ///   `verifyRequest` or the handler path throws, as in `serveForever`.
    public func handleRequest() throws {
        let limits = [timeout, listeningSocketTimeout].compactMap { $0 }
        let wait = limits.min()
        guard let loop = try beginServing(forever: false) else { return }
        defer { endHandling() }
        var outcome: LoopEventFlags?
        let readiness = LoopEvent(loop: loop, descriptor: fileDescriptor, flags: [.read]) { outcome = $0 }
        readiness.add(timeout: wait)
        while outcome == nil {
            loop.runOnce()
            if lifecycle.withLock({ $0.closeRequested }) {
                readiness.remove()
                throw SocketServerError.serverClosed
            }
        }
        readiness.remove()
        if outcome?.contains(.read) == true {
            try handleRequestNoBlock(loop: nil)
        } else {
            handleTimeout()
        }
    }

    /// The descriptor the loop waits on for requests (Python's `fileno()`); -1 for a bare `BaseServer`.
    /// A subclass with its own request source (a pipe, an eventfd) overrides this with that descriptor.
    open var fileDescriptor: Int32 { -1 }

    // MARK: - Hooks

    /// Called by the subclass initialiser to start listening; does nothing here.
    open func serverActivate() throws {}

    /// Called after every request and at least once per poll interval by `serveForever`; forwards to the
    /// mode (a forking server reaps its children here). Runs on the serving thread, never concurrently
    /// with itself.
    open func serviceActions() {
        mode.serviceActions(server: self)
    }

    /// Takes the next request from the ready descriptor. Stream servers accept; datagram servers receive.
    /// Runs on the serving thread (in `serveForever` or `handleRequest`), one call at a time.
    /// - Throws: a `SocketError` is swallowed by the loop (nothing is handled); any other error stops it.
    open func getRequest() throws -> (Request, SocketAddress) {
        throw SocketServerError.unexpectedRequest("\(type(of: self)) must override getRequest()")
    }

    /// Decides whether to handle a request; returning false makes the server call `shutdownRequest` and
    /// create no handler. Returns true. Runs on the serving thread, one call at a time, in every mode, except
    /// on a stream server whose connections need work first: with `TCPServer.proxyProtocol` set it runs once
    /// the PROXY header has given the original client's address, and with TLS (`SocketServerTLS`'s `useTLS`)
    /// after the handshake (both: header, then handshake, then this). It then runs on the thread that runs the
    /// request (the handler thread, worker, child, or the connection's event loop), so possibly on several
    /// threads at once, and an error it throws goes to `handleError` and costs only that connection instead
    /// of stopping `serveForever`.
    open func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool {
        true
    }

    /// Runs a verified request by handing it to the concurrency `mode`. Runs on the serving thread, one call
    /// at a time; the mode decides where the request then runs.
    open func processRequest(_ request: Request, clientAddress: SocketAddress) throws {
        try mode.processRequest(request, clientAddress: clientAddress, server: self)
    }

    /// Creates the request handler (from `requestHandlerType` or the `makeHandler` factory) and runs it
    /// (setup, handle, finish). Runs on the thread that runs the request: the serving thread (synchronous),
    /// a handler thread (threading), a worker (pool) or the child (forking); calls for different requests
    /// overlap in every mode but synchronous. Event-mode handlers are called on their loop instead (see
    /// `EventStreamHandler`).
    /// - Throws: what the handler or factory throws; `SocketServerError.unexpectedRequest` for a server
    ///   whose mode makes its own handlers (an `EventMode` server never calls this).
    open func finishRequest(_ request: Request, clientAddress: SocketAddress) throws {
        guard try secure(request, clientAddress: clientAddress) else { return }
        let handler: BaseRequestHandler
        switch handlerSource {
        case .type(let type):
            handler = type.init(request: request, clientAddress: clientAddress, server: self)
        case .factory(let makeHandler):
            handler = try makeHandler(HandlerContext(request: request, clientAddress: clientAddress, server: self))
        case .mode:
            throw SocketServerError.unexpectedRequest("\(type(of: self)) has no request handler: its mode makes its own")
        }
        try handler.run()
    }

    /// The security layer of a stream server (TLS, from `SocketServerTLS`), nil for a plain one. Set before
    /// serving; any thread. See `ConnectionSecurity`.
    package var connectionSecurity: (any ConnectionSecurity)? {
        get { securityStorage.withLock { $0 } }
        set { securityStorage.withLock { $0 = newValue } }
    }

    /// With a security layer, runs the handshake on the calling thread, then `verifyRequest`; false when
    /// `verifyRequest` refused (the handler must not run).
    private func secure(_ request: Request, clientAddress: SocketAddress) throws -> Bool {
        guard case .stream(let socket) = request, let security = connectionSecurity else { return true }
        do {
            try security.secure(socket, clientAddress: clientAddress, server: self)
        } catch {
            if let observer { observer.connectionRejected(.tlsHandshake) }
            throw error
        }
        let verified = try verifyRequest(request, clientAddress: clientAddress)
        if !verified, let observer { observer.connectionRejected(.verifyRequest) }
        return verified
    }

    /// Ends a request; calls `closeRequest` here. Stream servers half-close the connection first.
    ///
    /// Runs where the request ran: the serving thread (synchronous mode, or a request `verifyRequest`
    /// refused), a handler thread (threading), a worker (pool), the child (forking; the parent only calls
    /// `closeRequest`), or the connection's event loop (event mode). In every mode but synchronous, calls
    /// for different requests overlap, so an override must be thread-safe.
    open func shutdownRequest(_ request: Request) {
        closeRequest(request)
    }

    /// Releases a request's resources; does nothing here. Stream servers close the connection. Runs on the
    /// same threads as `shutdownRequest` (and, in forking mode, also in the parent, on the serving thread),
    /// concurrently for different requests.
    open func closeRequest(_ request: Request) {}

    /// Reports an error thrown while processing a request; the server keeps serving (Python's
    /// `handle_error`).
    ///
    /// Logs one line through `logger` saying what happened and to whom, at a level that follows swift-log's
    /// rules for libraries: what the client did (it went away, timed out, sent an oversized line or
    /// datagram, broke an event-mode limit) at `.debug` (a disconnect) or `.info`; anything else (a
    /// handler's own error, resource exhaustion) at `.error`. Metadata: `socketserver.client.address`,
    /// `socketserver.error`. Override to report differently.
    ///
    /// Called from the thread that ran the request: the serving thread, a handler or worker thread, the
    /// forked child, or an event loop, so in every mode but synchronous possibly from several threads at
    /// once.
    open func handleError(_ error: any Error, clientAddress: SocketAddress) {
        let metadata: Logger.Metadata = [
            "socketserver.client.address": "\(clientAddress)",
            "socketserver.error": "\(error)",
        ]
        switch ClientFault(error) {
        case .disconnect:
            logger.debug("client \(clientAddress) went away: \(error)", metadata: metadata)
        case .misbehaved:
            logger.info("request from \(clientAddress) failed: \(error)", metadata: metadata)
        case nil:
            logger.error("error while processing a request from \(clientAddress): \(error)", metadata: metadata)
        }
    }

    /// Called when `handleRequest()` waited `timeout` without a request; forwards to the mode. Runs on the
    /// thread in `handleRequest()`.
    open func handleTimeout() {
        mode.handleTimeout(server: self)
    }

    /// Cleans up (Python's `server_close`): lets the mode join or reap what is left and frees the event loop.
    /// Stream and datagram servers close their socket too. The server is `closed` afterwards, for good.
    ///
    /// Safe from any thread, any number of times. While another thread serves, it first stops that
    /// (`shutdown()`) and waits for it. Called on the serving thread itself (from a handler of a synchronous
    /// server), it cannot wait for itself: it asks the loop to stop and the close happens when
    /// `serveForever`/`handleRequest` returns. A second call while the first is closing waits for it.
    /// Blocks as long as the mode needs: joining handler or worker threads, waiting for children (with
    /// `blockOnClose`), up to `shutdownTimeout` for event-mode connections. Never call it from an event-mode
    /// handler: a loop cannot wait for itself.
    ///
    /// An override must call `super.serverClose()`; the close guard then wraps the whole override chain of
    /// the library's classes.
    open func serverClose() {
        performClose {
            mode.serverClose(server: self)
            lifecycle.withLock { $0.loop = nil }
        }
    }

    // MARK: - For concurrency modes

    /// Re-reads the mode's `isAcceptingRequests` and enables or disables the listener to match.
    /// Safe from any thread; takes effect on the serving thread.
    public func refreshAccepting() {
        guard let loop = lifecycle.withLock({ $0.servingThread == nil ? nil : $0.loop }) else { return }
        if loop.isInLoopThread {
            applyAccepting()
        } else {
            loop.execute { [weak self] in self?.applyAccepting() }
        }
    }

    /// The loop `serveForever` is running, when asked from its serving thread; nil from any other thread or
    /// while not serving. For modes that watch descriptors of their own there (a forking mode watches its
    /// children's exits); events on it must be added and freed on that thread or while it is not running.
    package var servingLoop: EventLoop? {
        lifecycle.withLock { state in
            guard let thread = state.servingThread, pthread_equal(thread, pthread_self()) != 0 else { return nil }
            return state.loop
        }
    }

    /// The listening socket's own timeout, which `handleRequest()` also honours.
    open var listeningSocketTimeout: Duration? { nil }

    // MARK: - Life cycle internals

    /// Records that a subclass bound its socket (`created` → `bound`).
    package func noteBound() {
        lifecycle.withLock { state in
            if state.phase == .created { state.phase = .bound }
        }
    }

    /// Runs `body`, the work of `serverClose()`, at most once per server, after serving has stopped.
    ///
    /// Nested calls (a subclass's `serverClose()` calling `super`) run their body directly. A concurrent call
    /// waits for the one that closes. On the serving thread the close is deferred until serving returns.
    package func performClose(_ body: () -> Void) {
        enum Decision {
            case run(outermost: Bool)
            case done
            case wait(DispatchSemaphore)
            case stopServing
        }
        while true {
            let decision = lifecycle.withLock { state -> Decision in
                let current = pthread_self()
                if let closer = state.closingThread {
                    if pthread_equal(closer, current) != 0 { return .run(outermost: false) }
                    let semaphore = DispatchSemaphore(value: 0)
                    state.closeWaiters.append(semaphore)
                    return .wait(semaphore)
                }
                if state.phase == .closed { return .done }
                let busy = state.servingThread ?? state.handlingThread
                if let busy {
                    state.closeRequested = true
                    if state.servingThread != nil { shutdownFlag.store(true, ordering: .releasing) }
                    state.loop?.exit()
                    // Deferred: serveForever or handleRequest calls serverClose() again as it returns.
                    if pthread_equal(busy, current) != 0 {
                        state.closeDeferred = true
                        return .done
                    }
                    return .stopServing
                }
                state.phase = .closing
                state.closingThread = current
                return .run(outermost: true)
            }
            switch decision {
            case .run(let outermost):
                body()
                guard outermost else { return }
                let waiters = lifecycle.withLock { state -> [DispatchSemaphore] in
                    state.phase = .closed
                    state.closingThread = nil
                    state.closeRequested = false
                    state.closeDeferred = false
                    let waiters = state.closeWaiters
                    state.closeWaiters.removeAll()
                    return waiters
                }
                for waiter in waiters { waiter.signal() }
                return
            case .done:
                return
            case .wait(let semaphore):
                semaphore.wait()
                return
            case .stopServing:
                // Wakes serveForever at once (handleRequest too), then waits until it has returned.
                waitUntilIdle()
            }
        }
    }

    /// Blocks until neither `serveForever` nor `handleRequest` runs on another thread.
    private func waitUntilIdle() {
        let waiter: DispatchSemaphore? = lifecycle.withLock { state in
            guard state.servingThread != nil || state.handlingThread != nil else { return nil }
            state.loop?.exit()
            let semaphore = DispatchSemaphore(value: 0)
            state.shutdownWaiters.append(semaphore)
            return semaphore
        }
        waiter?.wait()
    }

    // MARK: - Internals

    private var backoffTimer: LoopEvent?

    var isShutdownRequested: Bool { shutdownFlag.load(ordering: .acquiring) }

    /// The loop `serveForever` runs, while it runs and no shutdown or close was asked for; from any thread.
    var loopTakingParkedConnections: EventLoop? {
        lifecycle.withLock { state in
            guard state.servingThread != nil, !isShutdownRequested, !state.closeRequested else { return nil }
            return state.loop
        }
    }

    /// Whether the calling thread is the one in `serveForever` (not `handleRequest`).
    var isServingForeverOnThisThread: Bool {
        lifecycle.withLock { state in
            guard let thread = state.servingThread else { return false }
            return pthread_equal(thread, pthread_self()) != 0
        }
    }

    /// Re-reads whether the mode accepts, enabling or disabling the listener; on the serving loop only.
    func applyAcceptingOnLoop() {
        applyAccepting()
    }

    private func applyAccepting() {
        guard let readinessEvent else { return }
        dispatchResumedConnections()
        if mode.isAcceptingRequests && !isBackingOff {
            if !readinessEvent.isPending { readinessEvent.add() }
        } else {
            readinessEvent.remove()
        }
    }

    /// Handles what a readiness of the server's descriptor brought, in `serveForever`: one request here; a
    /// datagram server handles a batch of datagrams (`UDPServer`). On the serving thread.
    func handleReadyRequests(loop: EventLoop) throws {
        try handleRequestNoBlock(loop: loop)
    }

    /// Called on the serving thread when `serveForever`'s loop has stopped, before it returns; does nothing
    /// here (a datagram server drops its batch state).
    func servingStopped() {}

    /// Python's `_handle_request_noblock`.
    func handleRequestNoBlock(loop: EventLoop?) throws {
        let request: Request
        let clientAddress: SocketAddress
        do {
            (request, clientAddress) = try getRequest()
        } catch let error as SocketError {
            if error.isResourceExhaustion, let observer { observer.connectionRejected(.descriptorExhaustion) }
            if error.isResourceExhaustion, let loop { backOff(on: loop, after: error) }
            return
        }
        isInBackoffEpisode = false
        // Behind a PROXY-protocol listener the peer is the proxy, and a secured connection has its handshake
        // first: such a request is verified where it runs (`TCPServer.finishRequest`, `secure`, event mode),
        // once its header and handshake are done.
        // (`isStream` first: a datagram costs neither the security lock nor the mode's type check.)
        // (No `||` here: its autoclosure would copy the request.)
        let isStream = request.isStream
        let verified: Bool
        if isStream && (proxyProtocolSettings != nil || connectionSecurity != nil) {
            verified = true
        } else {
            verified = try verifyRequest(request, clientAddress: clientAddress)
        }
        if verified {
            // Event mode reports its connections where they open, on their loop (`StreamConnection`). The
            // stamp lets a connection parked between requests report its whole life when it ends.
            if isStream, let observer, !(mode is EventMode) {
                observer.connectionAccepted()
                if let socket = request.socket { ObservedConnection.accepted(socket) }
            }
            do {
                try processRequest(request, clientAddress: clientAddress)
            } catch {
                handleError(error, clientAddress: clientAddress)
                shutdownRequest(request)
            }
        } else {
            if let observer { observer.connectionRejected(.verifyRequest) }
            shutdownRequest(request)
        }
    }

    /// Out of descriptors or buffers: the listener stays readable, so stop watching it for a while instead
    /// of spinning, and say so once per episode.
    private func backOff(on loop: EventLoop, after error: SocketError) {
        if !isInBackoffEpisode {
            logger.warning("accept failed, pausing for 100 ms", metadata: ["socketserver.error": "\(error)"])
            isInBackoffEpisode = true
        }
        isBackingOff = true
        applyAccepting()
        let timer = backoffTimer ?? LoopEvent(timerOn: loop, repeating: false) { [unowned self] _ in
            self.isBackingOff = false
            self.applyAccepting()
        }
        backoffTimer = timer
        timer.add(timeout: .milliseconds(100))
    }

    /// Marks the calling thread as the serving one (`forever`: in `serveForever`, else in `handleRequest`)
    /// and returns the loop; nil when a pending `shutdown()` says `serveForever` should return at once.
    private func beginServing(forever: Bool) throws -> EventLoop? {
        try lifecycle.withLock { state in
            guard state.phase != .closing, state.phase != .closed, !state.closeRequested else {
                throw SocketServerError.serverClosed
            }
            guard state.servingThread == nil, state.handlingThread == nil else {
                throw SocketServerError.alreadyServing
            }
            if forever && isShutdownRequested {
                shutdownFlag.store(false, ordering: .releasing)
                return nil
            }
            let loop: EventLoop
            if let existing = state.loop {
                loop = existing
            } else {
                loop = try EventLoop()
                state.loop = loop
            }
            if forever {
                state.servingThread = pthread_self()
            } else {
                state.handlingThread = pthread_self()
            }
            return loop
        }
    }

    private func endServing() {
        let (waiters, closeNow) = lifecycle.withLock { state in
            state.servingThread = nil
            shutdownFlag.store(false, ordering: .releasing)
            let waiters = state.shutdownWaiters
            state.shutdownWaiters.removeAll()
            return (waiters, state.closeDeferred)
        }
        for waiter in waiters { waiter.signal() }
        if closeNow { serverClose() }
    }

    private func endHandling() {
        let (waiters, closeNow) = lifecycle.withLock { state in
            state.handlingThread = nil
            let waiters = state.shutdownWaiters
            state.shutdownWaiters.removeAll()
            return (waiters, state.closeDeferred)
        }
        for waiter in waiters { waiter.signal() }
        if closeNow { serverClose() }
    }
}

/// Where a server is in its life; see `BaseServer.lifecycleState`.
public enum LifecycleState: Sendable, Hashable {
    /// Created; for a socket server, the socket exists but is not bound (`bindAndActivate: false`).
    case created
    /// The socket is bound (and, for a stream server, listening); not serving right now.
    case bound
    /// `serveForever()` or `handleRequest()` is running.
    case serving
    /// `serverClose()` is running.
    case closing
    /// `serverClose()` has finished; final.
    case closed
}

/// The serve/shutdown/close state shared between the serving thread and other callers.
private struct Lifecycle {
    enum Phase {
        case created, bound, closing, closed
    }

    var phase = Phase.created
    var loop: EventLoop?
    /// The thread in `serveForever`.
    var servingThread: pthread_t?
    /// The thread in `handleRequest`.
    var handlingThread: pthread_t?
    // Whether a shutdown was asked for is `BaseServer.shutdownFlag`, changed only under this state's lock.
    /// `serverClose()` was called while serving: serving stops, then the close runs.
    var closeRequested = false
    /// `serverClose()` was called on the serving thread itself: it runs when serving returns.
    var closeDeferred = false
    /// Signalled when serving (or handling) ends.
    var shutdownWaiters: [DispatchSemaphore] = []
    /// The thread running `serverClose()`.
    var closingThread: pthread_t?
    /// Callers of `serverClose()` waiting for the one that is closing.
    var closeWaiters: [DispatchSemaphore] = []
}
