import Glibc

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

    /// Creates the socket for `serverAddress` and, by default, binds and listens.
    ///
    /// - Parameters:
    ///   - serverAddress: an IPv4, IPv6 (or, for the Unix subclasses, a Unix path) address; port 0 picks one.
    ///   - handler: the request handler class.
    ///   - bindAndActivate: false leaves the socket created but unbound; `serverAddress` stays as given.
    ///   - mode: the concurrency mode; defaults to one request at a time.
    /// - Throws: `SocketError` from `socket`, `bind` or `listen` (for example `EADDRINUSE`).
    public init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        bindAndActivate: Bool = true,
        mode: (any ConcurrencyMode)? = nil
    ) throws {
        try Self.checkHandler(handler, mode: mode)
        socket = try Socket(family: serverAddress.family, type: Self.socketType)
        super.init(serverAddress: serverAddress, handler: handler, mode: mode)
        if bindAndActivate {
            do {
                try serverBind()
                try serverActivate()
            } catch {
                serverClose()
                throw error
            }
        }
    }

    /// Rejects a handler or event mode of the wrong kind for this class's socket type, before any socket
    /// exists: a stream handler on a datagram server, a datagram handler on a stream server.
    private static func checkHandler(_ handler: BaseRequestHandler.Type, mode: (any ConcurrencyMode)?) throws {
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

    /// Accepts a connection.
    open override func getRequest() throws -> (Request, SocketAddress) {
        let (connection, clientAddress) = try socket.accept()
        return (.stream(connection), clientAddress)
    }

    /// Half-closes the connection (the peer reads end of file), then closes it.
    open override func shutdownRequest(_ request: Request) {
        if case .stream(let connection) = request {
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
