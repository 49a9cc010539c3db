/// How a server runs the requests it has accepted: Python's mix-ins (`ThreadingMixIn`, `ForkingMixIn`) as a
/// strategy object chosen per server.
///
/// The server calls the mode from its own hooks, on the serving thread: `processRequest` for each verified
/// request, `serviceActions` and `handleTimeout` from the loop, `serverClose` when it closes. A mode object
/// keeps per-server state (threads, children), so give each server its own instance.
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
}
