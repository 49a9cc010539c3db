/// One request at a time, on the serving thread: the reference's default (no mix-in).
///
/// The handler runs inside the loop's callback, so while it runs the server neither accepts nor answers
/// `shutdown()`; `serveForever` returns as soon as it finishes. Costs nothing beyond the handler itself.
public final class SynchronousMode: ConcurrencyMode {
    /// Creates the mode; it has no state.
    public init() {}

    /// `finishRequest` then `shutdownRequest`, as Python's `BaseServer.process_request`.
    public func processRequest(_ request: Request, clientAddress: SocketAddress, server: BaseServer) throws {
        try server.observedFinishRequest(request, clientAddress: clientAddress)
        server.shutdownRequest(request)
    }
}
