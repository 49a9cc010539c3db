import Dispatch
import Glibc
import Synchronization

/// Event-driven serving: many connections per thread, on libevent loops, with non-blocking handlers.
///
/// The fourth way of the reference ("maintain an explicit table of partially finished requests and use a
/// selector"), for servers whose clients stay connected. The server's own loop (the thread in
/// `serveForever`) accepts and runs the usual hooks (`verifyRequest`, `processRequest`, `handleError`,
/// `shutdownRequest`); `processRequest` hands each connection to one of `loops` worker loops, round robin,
/// where it stays until it closes. Each worker reads into one shared buffer, hands the bytes to an
/// `EventStreamHandler` without copying, and writes straight to the socket, queueing only what the peer
/// cannot take yet; an echo allocates nothing per message. Datagram servers run an `EventDatagramHandler`
/// on the server's own loop instead.
///
/// ```swift
/// let server = try TCPServer(.loopback(port: 8000), eventHandler: LineEcho.self)
/// try server.serveForever()
/// ```
///
/// Limits (`Configuration`): input and output per connection are bounded (a peer that does not read is no
/// longer read from), an idle timeout, `maxConnections`; accept backs off on `EMFILE`. `shutdown()` stops
/// accepting as in every mode; `serverClose()` then lets open connections finish for up to
/// `shutdownTimeout`, closes the rest and joins the loop threads. Give each server its own instance.
public final class EventMode: ConcurrencyMode, @unchecked Sendable {
    /// What the mode runs: a handler per connection, or one handler for every datagram.
    private enum Handling {
        case stream(@Sendable (EventHandlerContext) -> EventStreamHandler)
        case datagram(EventDatagramHandler)
        /// A task per datagram on the loops, running an async handler (see `AsyncDatagramRequestHandler`).
        case asyncDatagram(AsyncDatagramDispatcher)
    }

    /// The limits and sizes this mode was created with.
    public let configuration: Configuration
    // Immutable after init; the datagram handler is only used on the serving thread.
    private let handling: Handling
    private let workers = SanitizedMutex<Workers?>(nil)
    private let openConnections = Atomic<Int>(0)
    private let nextWorker = Atomic<Int>(0)
    private let isClosing = Atomic<Bool>(false)
    private let drained = SanitizedMutex<DispatchSemaphore?>(nil)
    /// The replies of a batch of datagrams (`EventDatagramHandler`), sent together; nil for other handlers.
    let datagramReplies: DatagramReplyQueue?
    /// `handling`'s datagram handler, kept apart so each datagram reaches it without copying the enum.
    private let datagramHandler: EventDatagramHandler?

    /// A mode whose connections are served by instances of `handler`, for `TCPServer` and `UnixStreamServer`.
    public init(handler: EventStreamHandler.Type, configuration: Configuration = Configuration()) {
        self.handling = .stream { _ in handler.init() }
        self.configuration = configuration
        self.datagramReplies = nil
        self.datagramHandler = nil
    }

    /// A mode whose connections are served by handlers that `makeHandler` builds, one per connection, on
    /// the loop that owns it (so what the closure captures must be thread-safe), for `TCPServer` and
    /// `UnixStreamServer`.
    public init(
        configuration: Configuration = Configuration(),
        makeHandler: @escaping @Sendable (EventHandlerContext) -> EventStreamHandler
    ) {
        self.handling = .stream(makeHandler)
        self.configuration = configuration
        self.datagramReplies = nil
        self.datagramHandler = nil
    }

    /// A mode whose connections are served by instances of `handler` on `loops` loops (nil: one per CPU).
    public convenience init(handler: EventStreamHandler.Type, loops: Int?) {
        self.init(handler: handler, configuration: Configuration(loops: loops))
    }

    /// A mode whose datagrams are answered by one instance of `datagramHandler`, for `UDPServer` and
    /// `UnixDatagramServer`. No loop thread is started: datagrams are handled on the server's own loop.
    public init(datagramHandler: EventDatagramHandler.Type, configuration: Configuration = Configuration()) {
        let handler = datagramHandler.init()
        self.handling = .datagram(handler)
        self.datagramHandler = handler
        self.configuration = configuration
        self.datagramReplies = DatagramReplyQueue()
    }

    /// A mode whose datagrams are all answered by `datagramHandler` (built by you, with whatever it needs),
    /// on the server's own loop; see `init(datagramHandler:configuration:)`. The mode keeps the instance
    /// and calls it only from the serving thread.
    public init(datagramHandler: sending EventDatagramHandler, configuration: Configuration = Configuration()) {
        self.handling = .datagram(datagramHandler)
        self.datagramHandler = datagramHandler
        self.configuration = configuration
        self.datagramReplies = DatagramReplyQueue()
    }

    /// A mode whose datagrams are each answered by an async handler task on one of the loops.
    init(configuration: Configuration, asyncDatagrams: AsyncDatagramDispatcher) {
        self.handling = .asyncDatagram(asyncDatagrams)
        self.configuration = configuration
        self.datagramReplies = nil
        self.datagramHandler = nil
    }

    /// Starts the loop threads now instead of on the first connection (a loop needs two descriptors, which
    /// may be scarce by then). Does nothing for an (event-mode) datagram handler, which needs no loop, or
    /// when they already run.
    /// - Throws: `SocketError` when a loop or its thread cannot be created.
    public func startLoops() throws {
        if case .datagram = handling { return }
        _ = try runningWorkers()
    }

    /// The number of connections open (accepted and not yet closed) across all loops.
    public var connectionCount: Int { openConnections.load(ordering: .relaxed) }

    /// True: `TCPServer.getRequest()` accepts connections with `O_NONBLOCK` already set, for the loops.
    public var wantsNonBlockingConnections: Bool { true }

    /// False at `maxConnections` and while closing, so the server stops accepting.
    public var isAcceptingRequests: Bool {
        if isClosing.load(ordering: .relaxed) { return false }
        guard let limit = connectionLimit else { return true }
        return openConnections.load(ordering: .relaxed) < limit
    }

    /// Hands a connection to a worker loop, or answers a datagram here, on the serving thread.
    public func processRequest(_ request: Request, clientAddress: SocketAddress, server: BaseServer) throws {
        // The datagram path first, without copying both enums into a tuple (the hot path of a UDP server).
        if let handler = datagramHandler, case .datagram(let datagram) = request {
            let event = EventDatagram(
                packet: datagram.packet, clientAddress: clientAddress, server: server, socket: datagram.socket,
                replies: datagramReplies)
            if let observer = server.observer {
                try observer.observeRequest { try handler.datagramReceived(event) }
            } else {
                try handler.datagramReceived(event)
            }
            server.shutdownRequest(request)
            return
        }
        switch (request, handling) {
        case (.stream(let socket), .stream(let makeHandler)):
            // `TCPServer.getRequest()` already accepted it non-blocking (see `wantsNonBlockingConnections`);
            // only a socket from a custom `getRequest()` may still need the two `fcntl` calls.
            if !socket.isNonBlocking { try socket.setNonBlocking(true) }
            if configuration.disableNagleAlgorithm && socket.family.isIP {
                try? socket.setOption(level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1)
            }
            let workers = try runningWorkers()
            let worker = workers[nextWorker.wrappingAdd(1, ordering: .relaxed).oldValue % workers.count]
            let open = openConnections.wrappingAdd(1, ordering: .relaxed).newValue
            if let limit = connectionLimit, open >= limit { server.refreshAccepting() }
            // The task does not retain the server (see `UnretainedServer`).
            let unretained = UnretainedServer(server)
            let proxyProtocol = server.proxyProtocolSettings
            let accepted = worker.loop.execute {
                guard let proxyProtocol else {
                    let context = EventHandlerContext(
                        clientAddress: clientAddress, loopIndex: worker.index, server: unretained, loop: worker.loop)
                    worker.adopt(socket, clientAddress: clientAddress, server: unretained, handler: makeHandler(context))
                    return
                }
                worker.readProxyHeader(of: socket, peer: clientAddress, configuration: proxyProtocol, server: unretained) {
                    Self.adoptAfterProxyHeader(
                        socket, clientAddress: $0, worker: worker, server: unretained, makeHandler: makeHandler)
                }
            }
            guard accepted else {
                openConnections.wrappingSubtract(1, ordering: .relaxed)
                throw SocketServerError.serverClosed
            }
        case (.datagram(let datagram), .asyncDatagram(let dispatcher)):
            let workers = try runningWorkers()
            let loop = workers[nextWorker.wrappingAdd(1, ordering: .relaxed).oldValue % workers.count].loop
            let open = openConnections.wrappingAdd(1, ordering: .relaxed).newValue
            if let limit = connectionLimit, open >= limit { server.refreshAccepting() }
            let unretained = UnretainedServer(server)
            let context = AsyncDatagramContext(datagram: datagram, clientAddress: clientAddress, server: unretained, loop: loop)
            dispatcher.start(context) { [self] onLoop in
                if onLoop {
                    connectionClosed(server: unretained)
                } else {
                    openConnections.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                }
            }
        default:
            throw SocketServerError.unexpectedRequest("EventMode was configured for the other kind of request")
        }
    }

    /// Stops accepting, lets open connections finish for up to `shutdownTimeout`, closes the rest, and
    /// joins the loop threads. Called by `serverClose()` after the listening socket is closed; call that
    /// from the thread that owns the server, never from a handler (a loop cannot wait for itself).
    ///
    /// Blocks for up to `shutdownTimeout` while connections are open, then for as long as the loops take
    /// to run the tasks already queued on them. Afterwards every `EventConnection.Handle` of this mode
    /// refuses work (`execute` returns false). Safe to call twice or from two threads at once: the first
    /// call does the work, a concurrent one returns at once.
    public func serverClose(server: BaseServer) {
        // Taking the workers out makes a concurrent or later call a no-op.
        guard let current = workers.withLock({ state -> Workers? in
            let taken = state
            state = nil
            if taken != nil { isClosing.store(true, ordering: .sequentiallyConsistent) }
            return taken
        }) else { return }
        let semaphore = DispatchSemaphore(value: 0)
        drained.withLock { $0 = semaphore }
        for worker in current.workers {
            worker.loop.execute { worker.noticeShutdown() }
        }
        if openConnections.load(ordering: .sequentiallyConsistent) > 0 && !server.closesImmediately {
            // In slices, so that a `closeWithoutDrain()` that comes after the drain began still ends it: a
            // cancelled `SocketServerService` asks for the shutdown (`run()`'s own cancellation handler) just
            // before it asks to skip the drain, and this thread may already be waiting by then.
            let deadline = DispatchTime.now() + configuration.shutdownTimeout.dispatchInterval
            while semaphore.wait(timeout: min(deadline, .now() + .milliseconds(50))) == .timedOut {
                if server.closesImmediately || DispatchTime.now() >= deadline { break }
            }
        }
        if case .asyncDatagram(let dispatcher) = handling { dispatcher.cancelAll() }
        for worker in current.workers {
            worker.loop.execute { worker.closeAll(EventModeError.shutdownDeadlineExpired) }
        }
        current.group.shutdown()
        drained.withLock { $0 = nil }
        isClosing.store(false, ordering: .sequentiallyConsistent)
    }

    /// The rest of `processRequest` for a connection whose PROXY header gave `clientAddress`: `verifyRequest`
    /// (here, on the loop, with the client's address), then the handler. Runs on the worker's loop.
    private static func adoptAfterProxyHeader(
        _ socket: Socket,
        clientAddress: SocketAddress,
        worker: EventWorker,
        server: UnretainedServer,
        makeHandler: @Sendable (EventHandlerContext) -> EventStreamHandler
    ) {
        let verified = server.with { server -> Bool in
            // A secured connection is verified after its handshake, which follows the header (StreamConnection).
            if server.connectionSecurity != nil { return true }
            do {
                if try server.verifyRequest(.stream(socket), clientAddress: clientAddress) { return true }
            } catch {
                server.handleError(error, clientAddress: clientAddress)
            }
            if let observer = server.observer { observer.connectionRejected(.verifyRequest) }
            server.shutdownRequest(.stream(socket))
            return false
        }
        guard verified else { return worker.proxyHeaderConnectionClosed(server: server) }
        let context = EventHandlerContext(clientAddress: clientAddress, loopIndex: worker.index, server: server, loop: worker.loop)
        worker.adopt(socket, clientAddress: clientAddress, server: server, handler: makeHandler(context))
    }

    /// Called by a worker, on its thread, when one of its connections has closed (and when an async datagram
    /// handler's task ended on its loop).
    func connectionClosed(server: UnretainedServer) {
        let remaining = openConnections.wrappingSubtract(1, ordering: .sequentiallyConsistent).newValue
        if remaining == 0 && isClosing.load(ordering: .sequentiallyConsistent) {
            _ = drained.withLock { $0?.signal() }
        }
        if let limit = connectionLimit, remaining == limit - 1 {
            server.with { $0.refreshAccepting() }
        }
    }

    /// The most connections (or async datagram handlers) open at once: `maxConnections`, which for async
    /// datagram handlers defaults to `AsyncDatagramDispatcher.defaultMaxRunning`, since nothing else (no
    /// descriptor) bounds how many a flood of datagrams would start.
    private var connectionLimit: Int? {
        if case .asyncDatagram = handling { return configuration.maxConnections ?? AsyncDatagramDispatcher.defaultMaxRunning }
        return configuration.maxConnections
    }

    /// Whether this mode serves connections (`EventStreamHandler`) rather than datagrams.
    var servesStreams: Bool {
        if case .stream = handling { return true }
        return false
    }

    /// The worker loops, started on first use (and again for a mode reused after `serverClose()`).
    private func runningWorkers() throws -> [EventWorker] {
        try workers.withLock { state in
            if let state { return state.workers }
            if isClosing.load(ordering: .sequentiallyConsistent) { throw SocketServerError.serverClosed }
            let group = try EventLoopGroup(count: configuration.loops, name: "event-loop")
            let started = Workers(
                group: group,
                workers: group.loops.enumerated().map { EventWorker(loop: $1, index: $0, mode: self) }
            )
            state = started
            return started.workers
        }
    }
}

/// The running loops of an `EventMode` and their workers.
private struct Workers: Sendable {
    let group: EventLoopGroup
    let workers: [EventWorker]
}

extension Duration {
    /// The duration as a Dispatch interval, rounded down to nanoseconds.
    var dispatchInterval: DispatchTimeInterval {
        let (seconds, attoseconds) = components
        let nanoseconds = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !nanoseconds.overflow else { return .never }
        return .nanoseconds(Int(nanoseconds.partialValue + attoseconds / 1_000_000_000))
    }
}
