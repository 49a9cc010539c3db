/// How a server runs the requests it has accepted: Python's mix-ins (`ThreadingMixIn`, `ForkingMixIn`) as a
/// strategy object chosen per server.
///
/// The server calls the mode from its own hooks, on the serving thread: `processRequest` for each verified
/// request, `serviceActions` and `handleTimeout` from the loop, `serverClose` when it closes. A mode object
/// keeps per-server state (threads, children), so give each server its own instance.
///
/// # Implementation requirements
///
/// A mode can be written with public API only (the library's own modes follow the same rules):
///
/// - `processRequest(_:clientAddress:server:)` is called on the serving thread, one request at a time. It
///   must return quickly when the mode runs requests elsewhere (the serving thread accepts nothing while it
///   runs). For every request it accepts, the mode must, on whatever thread it chooses, call
///   `server.finishRequest(_:clientAddress:)`, report an error that throws with
///   `server.handleError(_:clientAddress:)`, and end with `server.shutdownRequest(_:)` exactly once. If it
///   throws instead, it must not have started the request: the server then calls `handleError` and
///   `shutdownRequest` itself.
/// - `finishRequest`, `handleError`, `shutdownRequest` and `closeRequest` may be called from any thread, and
///   from several at once; `refreshAccepting()` from any thread. A mode must not call `serveForever`,
///   `handleRequest`, `shutdown` or `serverClose` on its server.
/// - `isAcceptingRequests` is read on the serving thread before each accept. A mode at capacity returns
///   false, and calls `server.refreshAccepting()` once it has room again (from any thread): the listener is
///   then re-enabled; nothing spins meanwhile.
/// - `serviceActions(server:)` runs on the serving thread after every request and at least once per poll
///   interval; `handleTimeout(server:)` when `handleRequest()` timed out. Keep both short.
/// - `serverClose(server:)` is called once per server, after serving has stopped (and, for a stream server,
///   after the listener is closed; for a datagram server before its socket closes), possibly from the
///   server's `deinit` on whatever thread released it. It must release what the mode holds (join or detach
///   its threads, reap or document its children) and may block to do so. It must not keep a strong
///   reference to the server afterwards.
/// - The mode must be `Sendable`: its state is touched from the serving thread and from the threads it runs
///   requests on.
public protocol ConcurrencyMode: AnyObject, Sendable {
    /// Runs one verified request: handle it (`server.finishRequest`) and release it (`server.shutdownRequest`),
    /// here or elsewhere. An error thrown from here goes to `handleError` and `shutdownRequest` on the caller.
    func processRequest(_ request: Request, clientAddress: SocketAddress, server: BaseServer) throws

    /// Periodic housekeeping, called from `BaseServer.serviceActions()` (at least once per poll interval).
    func serviceActions(server: BaseServer)

    /// Called from `BaseServer.handleTimeout()` when `handleRequest()` timed out.
    func handleTimeout(server: BaseServer)

    /// Called from `BaseServer.serverClose()` after the listening socket is closed: join or reap what is left.
    func serverClose(server: BaseServer)

    /// Whether the server should take new requests now; a mode at its capacity returns false and calls
    /// `server.refreshAccepting()` once it has room again, so the listener is disabled instead of spinning.
    var isAcceptingRequests: Bool { get }

    /// Whether connections should be accepted non-blocking (`O_NONBLOCK` set by `accept4` itself, no extra
    /// `fcntl`): true for a mode that drives them from an event loop, false (the default) for modes whose
    /// handlers read and write in a straight line. Read by `TCPServer.getRequest()` on the serving thread,
    /// once per connection, so keep it a constant. Datagram servers ignore it.
    var wantsNonBlockingConnections: Bool { get }
}

extension ConcurrencyMode {
    /// Does nothing.
    public func serviceActions(server: BaseServer) {}
    /// Does nothing.
    public func handleTimeout(server: BaseServer) {}
    /// Does nothing.
    public func serverClose(server: BaseServer) {}
    /// Always true.
    public var isAcceptingRequests: Bool { true }
    /// False: accepted connections are blocking sockets.
    public var wantsNonBlockingConnections: Bool { false }
}
