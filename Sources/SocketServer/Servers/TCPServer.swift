import Glibc
import Logging

/// A stream server on a listening socket: TCP over IPv4 or IPv6 (Python's `socketserver.TCPServer`).
///
/// The address family comes from the address (`127.0.0.1`, `::1`, ...). The initialiser creates the socket
/// and, unless `bindAndActivate` is false, binds and listens; on failure it closes the socket and throws, so a
/// failed construction keeps no descriptor. To change `allowReuseAddress` and the other bind-time attributes,
/// either override them in a subclass or pass `bindAndActivate: false`, set them, then call `serverBind()`
/// and `serverActivate()`.
open class TCPServer: BaseServer, @unchecked Sendable {
    /// The listening (or, for datagram servers, receiving) socket.
    public let socket: Socket
    /// The file a Unix socket leaves behind: removed when stale before binding, and on close.
    private let unixSocketFile = UnixSocketFile()

    /// The families an adopted listener may have (`init(adopting:...)`): IPv4, IPv6 or Unix here, as a
    /// `TCPServer` serves a Unix address too; the Unix classes narrow it to Unix.
    class var requiredFamilies: Set<AddressFamily> { [.inet, .inet6, .unix] }

    /// Stream or datagram; fixed per class, as Python's `socket_type` class attribute.
    open class var socketType: SocketType { .stream }

    /// The listen backlog. Defaults to `SOMAXCONN` (4096 on Linux, capped by `net.core.somaxconn`), as
    /// Python 3.15 does; Python up to 3.14 used 5, which refuses bursts of connections.
    open var requestQueueSize: Int = Int(SOMAXCONN)
    /// Sets `SO_REUSEADDR` before binding (Python's `allow_reuse_address`). Default false.
    open var allowReuseAddress = false
    /// Sets `SO_REUSEPORT` before binding, on IPv4 and IPv6 sockets only (Python's `allow_reuse_port`).
    /// Default false.
    open var allowReusePort = false
    /// For an IPv6 address, accept IPv4 clients too (`IPV6_V6ONLY` off). Default false: IPv6 only, whatever the
    /// system default. Not in Python, which leaves the system default.
    open var dualStack = false
    /// The bound on each request's duration in the blocking modes, from the moment its handler starts
    /// (`ServerConfiguration`'s `requestTimeout`; `StreamRequestHandler.setup()` sets it as the connection's
    /// `deadline`); nil, the default, sets none. Not in Python. Set it before serving.
    open var requestTimeout: Duration?

    /// Creates the socket for `serverAddress` and, by default, binds and listens.
    ///
    /// - Parameters:
    ///   - serverAddress: an IPv4, IPv6 (or, for the Unix subclasses, a Unix path) address; port 0 picks one.
    ///   - handler: the request handler class.
    ///   - bindAndActivate: false leaves the socket created but unbound; `serverAddress` stays as given.
    ///   - mode: the concurrency mode; defaults to one request at a time.
    /// - Throws: `SocketServerError.handlerMismatch` for a handler of the wrong kind; `SocketError` from
    ///   `socket`, `bind` or `listen` (for example `EADDRINUSE`).
    public init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        bindAndActivate: Bool = true,
        mode: (any ConcurrencyMode)? = nil
    ) throws {
        try Self.checkHandler(handler, mode: mode)
        try (mode as? EventMode)?.configuration.validate()
        socket = try Self.makeSocket(for: serverAddress)
        super.init(serverAddress: serverAddress, handler: handler, mode: mode)
        try bindIfAsked(bindAndActivate)
    }

    /// Creates the socket for `serverAddress`, with its settings, logger and a factory for its handlers,
    /// and by default binds and listens.
    ///
    /// ```swift
    /// let store = KeyValueStore()                        // thread-safe, shared by every request
    /// let server = try TCPServer(.loopback(port: 8000), mode: ThreadPoolMode(workers: 8)) { context in
    ///     KeyValueHandler(context, dependencies: store)
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - serverAddress: an IPv4, IPv6 (or, for the Unix subclasses, a Unix path) address; port 0 picks one.
    ///   - configuration: the bind-time settings; checked here.
    ///   - mode: the concurrency mode; defaults to one request at a time.
    ///   - logger: where `handleError` and the server's diagnostics go; defaults to a `Logger` labelled
    ///     `SocketServer`.
    ///   - bindAndActivate: false leaves the socket created but unbound; `serverAddress` stays as given.
    ///   - makeHandler: builds the handler for each request (see `HandlerContext`), on the thread that runs
    ///     the request; nil when the mode makes its own handlers (`EventMode`).
    /// - Throws: `SocketServerError.invalidConfiguration` or `.handlerMismatch`; `SocketError` from
    ///   `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: (any ConcurrencyMode)? = nil,
        logger: Logger? = nil,
        bindAndActivate: Bool = true,
        makeHandler: (@Sendable (HandlerContext) throws -> BaseRequestHandler)?
    ) throws {
        try Self.checkSettings(configuration, mode: mode)
        if makeHandler == nil, !(mode is EventMode) {
            throw SocketServerError.handlerMismatch("\(Self.self) needs a handler factory unless its mode is an EventMode")
        }
        try Self.checkHandler(BaseRequestHandler.self, mode: mode)
        socket = try Self.makeSocket(for: serverAddress)
        super.init(serverAddress: serverAddress, mode: mode, logger: logger, makeHandler: makeHandler)
        self.configuration = configuration
        try bindIfAsked(bindAndActivate)
    }

    /// Creates a server around `listener`, a socket that is already bound (and, for a stream server,
    /// listening): one this process inherited from systemd, a launcher or the process that re-executed it
    /// (see `SocketActivation`), instead of creating and binding its own.
    ///
    /// The kernel is asked what the socket is (`getsockname`, `SO_TYPE`, `SO_ACCEPTCONN`: a few system calls
    /// on the calling thread); `serverAddress` becomes its bound address. A stream listener is switched to
    /// non-blocking and a datagram socket to blocking, as the server's own would be (`O_NONBLOCK` belongs to
    /// the open file, so every process sharing the socket sees the change). The server owns `listener` from
    /// now on and closes it in `serverClose()`, but never removes a Unix socket's file: that belongs to
    /// whoever bound it (systemd removes its own). The bind-time settings of `configuration` (reuse,
    /// backlog, dual stack) were decided by that binder and are not applied; `timeout` and `maxPacketSize`
    /// are. Do not call `serverBind()` or `serverActivate()` on such a server.
    ///
    /// - Parameters:
    ///   - listener: the bound socket; `Socket(inheriting:)` makes one from a descriptor.
    ///   - configuration: the settings; checked here.
    ///   - mode: the concurrency mode; defaults to one request at a time.
    ///   - logger: where `handleError` and the server's diagnostics go.
    ///   - makeHandler: builds the handler for each request; nil when the mode makes its own (`EventMode`).
    /// - Throws: `SocketServerError.invalidListener` when `listener` is closed, of the wrong type for this
    ///   class (a datagram socket for a stream server, or the reverse), of a family the class does not serve
    ///   (a `UnixStreamServer` needs a Unix socket), of another family than the object says, unbound, or a
    ///   stream socket that does not listen; `.invalidConfiguration` or `.handlerMismatch` as the other
    ///   initialisers. `listener` stays open when this throws.
    public init(
        adopting listener: Socket,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: (any ConcurrencyMode)? = nil,
        logger: Logger? = nil,
        makeHandler: (@Sendable (HandlerContext) throws -> BaseRequestHandler)?
    ) throws {
        try Self.checkSettings(configuration, mode: mode)
        if makeHandler == nil, !(mode is EventMode) {
            throw SocketServerError.handlerMismatch("\(Self.self) needs a handler factory unless its mode is an EventMode")
        }
        try Self.checkHandler(BaseRequestHandler.self, mode: mode)
        let boundAddress = try Self.checkAdoptable(listener)
        socket = listener
        super.init(serverAddress: boundAddress, mode: mode, logger: logger, makeHandler: makeHandler)
        self.configuration = configuration
        noteBound()
    }

    /// Creates the server as `init(_:handler:bindAndActivate:mode:)` does, with bind-time settings and a
    /// logger.
    /// - Throws: `SocketServerError.invalidConfiguration` or `.handlerMismatch`; `SocketError` from
    ///   `socket`, `bind` or `listen`.
    public convenience init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: (any ConcurrencyMode)? = nil,
        logger: Logger? = nil,
        bindAndActivate: Bool = true
    ) throws {
        try Self.checkHandler(handler, mode: mode)
        try self.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger, bindAndActivate: bindAndActivate,
            makeHandler: HandlerSource.makeHandler(for: handler)
        )
        handlerSource = .type(handler)
    }

    /// Creates a server whose handlers are instances of `handler` built with `dependencies`, the value
    /// they share (a store, a pool, a cache).
    ///
    /// ```swift
    /// final class CountingEcho: DependentStreamRequestHandler<Counter> { ... }
    /// let server = try TCPServer(.loopback(), handler: CountingEcho.self, dependencies: Counter(),
    ///                            mode: ThreadingMode())
    /// ```
    /// - Throws: as `init(_:configuration:mode:logger:bindAndActivate:makeHandler:)`.
    public convenience init<Handler: DependencyReceivingHandler>(
        _ serverAddress: SocketAddress,
        handler: Handler.Type,
        dependencies: Handler.Dependencies,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: (any ConcurrencyMode)? = nil,
        logger: Logger? = nil,
        bindAndActivate: Bool = true
    ) throws {
        try Self.checkKind(handler, mode: mode)
        try self.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger, bindAndActivate: bindAndActivate
        ) { context in
            handler.init(context, dependencies: dependencies)
        }
    }

    /// The bind-time settings as one value: reads and writes the Python-named attributes
    /// (`allowReuseAddress`, `allowReusePort`, `requestQueueSize`, `dualStack`, `timeout` and, for datagram
    /// servers, `maxPacketSize`), so a subclass's overrides show here. Setting it does not check the values;
    /// set it before binding.
    public var configuration: ServerConfiguration {
        get {
            ServerConfiguration(
                allowReuseAddress: allowReuseAddress,
                allowReusePort: allowReusePort,
                requestQueueSize: requestQueueSize,
                dualStack: dualStack,
                timeout: timeout,
                maxPacketSize: (self as? UDPServer)?.maxPacketSize ?? ServerConfiguration().maxPacketSize,
                requestTimeout: requestTimeout,
                proxyProtocol: proxyProtocol
            )
        }
        set {
            allowReuseAddress = newValue.allowReuseAddress
            allowReusePort = newValue.allowReusePort
            requestQueueSize = newValue.requestQueueSize
            dualStack = newValue.dualStack
            timeout = newValue.timeout
            (self as? UDPServer)?.maxPacketSize = newValue.maxPacketSize
            requestTimeout = newValue.requestTimeout
            proxyProtocol = newValue.proxyProtocol
        }
    }

    /// The PROXY protocol settings (`ServerConfiguration.proxyProtocol`): nil reads no header. Set it before
    /// serving; a change while serving applies to connections accepted afterwards.
    public var proxyProtocol: ProxyProtocolConfiguration? {
        get { proxyProtocolSettings }
        set { proxyProtocolSettings = newValue }
    }

    /// Binds and listens when asked; on failure closes everything and rethrows.
    private func bindIfAsked(_ bindAndActivate: Bool) throws {
        guard bindAndActivate else { return }
        do {
            try serverBind()
            try serverActivate()
        } catch {
            serverClose()
            throw error
        }
    }

    /// Checks the settings, the event mode's configuration, and the settings that do not fit this class or
    /// mode (`requestTimeout` with an event mode, the PROXY protocol on a datagram server), before any
    /// socket exists.
    private static func checkSettings(_ configuration: ServerConfiguration, mode: (any ConcurrencyMode)?) throws {
        try configuration.validate()
        try (mode as? EventMode)?.configuration.validate()
        if configuration.requestTimeout != nil, mode is EventMode {
            throw SocketServerError.invalidConfiguration(
                "requestTimeout applies to the blocking modes; event and async modes bound slow clients with idleTimeout and a handler's timeout")
        }
        if configuration.proxyProtocol != nil, socketType != .stream {
            throw SocketServerError.invalidConfiguration("\(Self.self) is a datagram server: the PROXY protocol is for streams")
        }
    }

    /// Rejects a handler or event mode of the wrong kind for this class's socket type, before any socket
    /// exists: a stream handler on a datagram server, a datagram handler on a stream server.
    package static func checkHandler(_ handler: BaseRequestHandler.Type, mode: (any ConcurrencyMode)?) throws {
        if handler is any DependencyReceivingHandler.Type {
            throw SocketServerError.handlerMismatch(
                "\(handler) needs its dependencies: pass them with init(_:handler:dependencies:)"
            )
        }
        try checkKind(handler, mode: mode)
    }

    /// The stream/datagram half of `checkHandler`.
    private static func checkKind(_ handler: BaseRequestHandler.Type, mode: (any ConcurrencyMode)?) throws {
        let streams = socketType == .stream
        if let eventMode = mode as? EventMode {
            guard eventMode.servesStreams == streams else {
                throw SocketServerError.handlerMismatch(
                    streams
                        ? "\(Self.self) is a stream server; give it an EventStreamHandler"
                        : "\(Self.self) is a datagram server; give it an EventDatagramHandler"
                )
            }
            return
        }
        if streams, handler is DatagramRequestHandler.Type {
            throw SocketServerError.handlerMismatch(
                "\(Self.self) is a stream server; \(handler) is a DatagramRequestHandler"
            )
        }
        if !streams, handler is StreamRequestHandler.Type {
            throw SocketServerError.handlerMismatch(
                "\(Self.self) is a datagram server; \(handler) is a StreamRequestHandler"
            )
        }
    }

    /// Forgets the Unix socket file this server bound without removing it: another process now serves the
    /// same socket (it was handed over by `ProcessRestart`), so closing here must leave the path alone.
    func relinquishSocketFile() {
        unixSocketFile.release()
    }

    /// The address family of the socket.
    public var addressFamily: AddressFamily { socket.family }

    /// The listening socket's descriptor, -1 after `serverClose()`.
    open override var fileDescriptor: Int32 { socket.fileDescriptor }

    /// Applies the reuse options, binds to `serverAddress`, then stores the bound address in it.
    ///
    /// For a Unix path, first removes a stale socket file there (one nobody accepts on; never a live socket
    /// or another kind of file), and remembers the path so that `serverClose()` removes it. Python does
    /// neither, so a restarted Python server fails with `EADDRINUSE`.
    open func serverBind() throws {
        if allowReuseAddress {
            try socket.setOption(level: SOL_SOCKET, name: SO_REUSEADDR, value: 1)
        }
        if allowReusePort && addressFamily.isIP {
            try socket.setOption(level: SOL_SOCKET, name: SO_REUSEPORT, value: 1)
        }
        if addressFamily == .inet6 {
            try socket.setOption(level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, value: dualStack ? 0 : 1)
        }
        if addressFamily == .unix {
            UnixSocketFile.removeStale(at: serverAddress, type: Self.socketType)
        }
        try socket.bind(to: serverAddress)
        serverAddress = try socket.localAddress
        if addressFamily == .unix { unixSocketFile.claim(serverAddress) }
        noteBound()
    }

    /// Listens with a backlog of `requestQueueSize`.
    open override func serverActivate() throws {
        try socket.listen(backlog: requestQueueSize)
    }

    /// Closes the socket and lets the mode finish (join threads, reap children).
    ///
    /// A stream server closes its listener first, as Python does, so nothing new arrives while the mode waits.
    /// A datagram server closes last: requests still in flight reply through this very socket, and closing it
    /// first would drop their replies.
    ///
    /// Runs once per server, after serving has stopped; see `BaseServer.serverClose()` for the guarantees.
    open override func serverClose() {
        performClose {
            if Self.socketType == .stream {
                socket.close()
                super.serverClose()
            } else {
                super.serverClose()
                socket.close()
            }
            unixSocketFile.remove()
        }
    }

    /// Accepts a connection: one `accept4` on the non-blocking listener, on the serving thread.
    ///
    /// The connection is blocking unless the mode's `wantsNonBlockingConnections` asks otherwise (event
    /// mode); always close-on-exec.
    /// - Throws: `SocketError`, which the serving loop swallows; `EAGAIN` at once when no connection is
    ///   pending after all (a spurious readiness, or another thread or process took it), instead of blocking.
    open override func getRequest() throws -> (Request, SocketAddress) {
        let (connection, clientAddress) = try socket.accept(nonBlocking: mode.wantsNonBlockingConnections)
        return (.stream(connection), clientAddress)
    }

    /// The server's socket: a stream listener is non-blocking, so that an `accept` after a spurious
    /// readiness fails with `EAGAIN` instead of blocking the serving loop. A datagram socket stays blocking,
    /// for the replies handlers send on it from any thread; `UDPServer.getRequest()` receives with
    /// `MSG_DONTWAIT` instead.
    private static func makeSocket(for serverAddress: SocketAddress) throws -> Socket {
        try Socket(family: serverAddress.family, type: socketType, nonBlocking: socketType == .stream)
    }

    /// With `proxyProtocol` set, first reads the connection's PROXY header on this thread (under its
    /// `headerTimeout`), then runs `verifyRequest` with the original client's address, then the handler with
    /// it; otherwise just the handler (`BaseServer.finishRequest`). Runs on the thread or child that runs the
    /// request. An override must call `super`, or the header reaches the handler as data.
    /// - Throws: `ProxyProtocolError` for an untrusted peer or a bad header (the connection is then shut
    ///   down unhandled); what `verifyRequest`, the factory or the handler throws.
    open override func finishRequest(_ request: Request, clientAddress: SocketAddress) throws {
        guard let proxyProtocol = proxyProtocolSettings, case .stream(let connection) = request else {
            return try super.finishRequest(request, clientAddress: clientAddress)
        }
        let original: SocketAddress
        do {
            original = try proxyProtocol.readHeader(from: connection, peer: clientAddress)
        } catch {
            if let observer { observer.connectionRejected(.proxyHeader) }
            throw error
        }
        // With TLS, `super` verifies after the handshake (which follows the header), with this address.
        if connectionSecurity == nil {
            guard try verifyRequest(request, clientAddress: original) else {
                if let observer { observer.connectionRejected(.verifyRequest) }
                return
            }
        }
        try super.finishRequest(request, clientAddress: original)
    }

    /// Half-closes the connection (the peer reads end of file), then closes it.
    open override func shutdownRequest(_ request: Request) {
        if case .stream(let connection) = request {
            connection.transport?.shutdown()
            try? connection.shutdown(.write)
        }
        closeRequest(request)
    }

    /// Closes the connection.
    open override func closeRequest(_ request: Request) {
        if case .stream(let connection) = request {
            connection.close()
        }
    }

    /// The listening socket's `timeout`, honoured by `handleRequest()`.
    open override var listeningSocketTimeout: Duration? { socket.timeout }
}
