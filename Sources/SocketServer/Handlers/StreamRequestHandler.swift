import Glibc

/// A handler for stream servers: the connection plus buffered `rfile` and `wfile` over it.
///
/// Python's `socketserver.StreamRequestHandler`. Override `handle()` and use `rfile.readLine()` and
/// `wfile.write(_:)`. The class attributes of Python (`rbufsize`, `wbufsize`, `timeout`,
/// `disable_nagle_algorithm`) are overridable properties here:
///
/// ```swift
/// final class EchoHandler: StreamRequestHandler {
///     override var timeout: Duration? { .seconds(5) }
///     override func handle() throws {
///         try wfile.write(try rfile.readLine())
///     }
/// }
/// ```
open class StreamRequestHandler: BaseRequestHandler {
    /// The accepted connection (Python's `self.connection`). A closed placeholder when the request is not a
    /// stream; `setup()` then throws.
    public let connection: Socket

    /// Bytes received per call by `rfile` (Python's `rbufsize`), clamped to 0 ... 1 MiB; 0 takes only what
    /// each read needs. Default 8192.
    open var readBufferSize: Int { 8192 }
    /// `wfile`'s buffer (Python's `wbufsize`): 0 (or less), the default, sends on every write; above 0,
    /// writes collect until that size and the rest is flushed in `finish()`.
    open var writeBufferSize: Int { 0 }
    /// A limit on each receive and send of the connection (Python's `timeout`); nil, the default, waits for
    /// ever. An expired read or write throws a `SocketError` with `isTimeout`.
    open var timeout: Duration? { nil }
    /// Sets `TCP_NODELAY` on TCP connections (Python's `disable_nagle_algorithm`). Default false.
    open var disableNagleAlgorithm: Bool { false }
    /// The longest line `rfile.readLine()` accepts before throwing. Default 64 KiB.
    open var maxLineLength: Int { 65536 }
    /// The largest count `rfile.read(_:)` accepts before throwing `SocketServerError.readLengthOutOfRange`
    /// (Python has no such limit). Default `RequestReader.defaultMaxReadLength`, 16 MiB. A read only ever
    /// holds the bytes that arrived, so this bounds what a peer that really sends a large body costs; raise
    /// it for a protocol with larger messages.
    open var maxReadLength: Int { RequestReader.defaultMaxReadLength }

    /// The connection's input.
    public private(set) lazy var rfile = RequestReader(
        socket: connection, bufferSize: readBufferSize, maxLineLength: maxLineLength, maxReadLength: maxReadLength)
    /// The connection's output.
    public private(set) lazy var wfile = RequestWriter(socket: connection, bufferSize: writeBufferSize)

    /// Takes the connection out of a `.stream` request.
    public required init(request: Request, clientAddress: SocketAddress, server: BaseServer) {
        if case .stream(let connection) = request {
            self.connection = connection
        } else {
            self.connection = Socket(adopting: -1, family: .unspecified, type: .stream)
        }
        super.init(request: request, clientAddress: clientAddress, server: server)
    }

    /// Applies `timeout`, the server's `requestTimeout` (as the connection's `deadline`, from now) and
    /// `disableNagleAlgorithm` to the connection.
    /// - Throws: `SocketServerError.unexpectedRequest` when the request is not a connection.
    open override func setup() throws {
        guard case .stream = request else {
            throw SocketServerError.unexpectedRequest("StreamRequestHandler needs a stream request")
        }
        if let timeout { connection.timeout = timeout }
        if let limit = (server as? TCPServer)?.requestTimeout, !connection.isNonBlocking {
            connection.deadline = .now + limit
        }
        if disableNagleAlgorithm && connection.family.isIP {
            try connection.setOption(level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1)
        }
    }

    /// Hands the connection back to the server until the client sends its next request (keep-alive without
    /// holding a thread, worker or child): call it between requests, then return from `handle()`.
    ///
    /// The connection waits on the server's own event loop (a descriptor and one libevent event, no
    /// thread). When its next bytes arrive, the server gives it to the mode again as a new request, behind
    /// the connections whose requests came earlier, and a **fresh handler** (a new instance, with its own
    /// `setup()`, `rfile` and `wfile`) serves it; state kept in this instance does not carry over, socket
    /// options set on the connection do. No byte within `idleTimeout`: the server ends the connection with
    /// `shutdownRequest`; a client that closes meanwhile is closed without waking a handler. In forking mode
    /// the parent parks its own copy once this child has exited (see `BaseServer`'s parking notes).
    ///
    /// Flushes `wfile` first. Costs a `loop.execute` (a lock and a wake-up of the serving loop) and, per
    /// wake-up, one `recv(MSG_PEEK)`. Call it from `handle()`, on the handler's thread.
    /// - Returns: true when the server took the connection: do not use `connection`, `rfile` or `wfile`
    ///   again (the `shutdownRequest` ending this request finds it detached and leaves it open). False,
    ///   with the connection untouched, when it cannot be parked: `rfile` holds bytes already received (the
    ///   next request is here: serve it), the connection is carried by TLS (`isSecured`), the flush failed, the server is not in `serveForever` (or is
    ///   shutting down), or the request is not a connection.
    public func parkConnection(idleTimeout: Duration) -> Bool {
        // A TLS connection is not parked: its session lives with this handler (and, forking, in this child).
        guard case .stream = request, !connection.isClosed, !connection.isSecured, rfile.bufferedCount == 0 else {
            return false
        }
        do {
            try wfile.flush()
        } catch {
            return false
        }
        return server.parkConnection(connection, clientAddress: clientAddress, idleTimeout: idleTimeout)
    }

    /// Flushes `wfile`, ignoring a send error from a client that has gone, then closes both streams (the
    /// connection itself is closed by the server's `shutdownRequest`).
    open override func finish() throws {
        if !wfile.isClosed {
            do {
                try wfile.flush()
            } catch is SocketError {
                // The client vanished; its request is over either way (Python issue #14574).
            }
        }
        wfile.close()
        rfile.close()
    }
}
