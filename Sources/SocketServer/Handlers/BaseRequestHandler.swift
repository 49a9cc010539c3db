/// The base of every request handler: one instance per request, running `setup()`, `handle()`, `finish()`.
///
/// Python's `socketserver.BaseRequestHandler`. Subclass it, override `handle()` (and `setup()`/`finish()` if
/// needed), and pass the class to a server. Python's constructor runs the three steps; in Swift the server
/// creates the handler with `init(request:clientAddress:server:)` and then calls `run()`. If `setup()`
/// throws, neither `handle()` nor `finish()` runs; `finish()` runs even when `handle()` throws, and an
/// error from `finish()` wins over one from `handle()`, as a Python `finally` does.
open class BaseRequestHandler {
    /// The request: a connection, a datagram, or what a custom `getRequest()` produced.
    public let request: Request
    /// Who sent it.
    public let clientAddress: SocketAddress
    /// The server that received it.
    public let server: BaseServer

    /// Stores the request, its sender and the server. Called by the server for each request.
    public required init(request: Request, clientAddress: SocketAddress, server: BaseServer) {
        self.request = request
        self.clientAddress = clientAddress
        self.server = server
    }

    /// Prepares for `handle()`; does nothing here.
    open func setup() throws {}

    /// Serves the request; does nothing here. Override this.
    open func handle() throws {}

    /// Cleans up after `handle()`, even when it threw; does nothing here.
    open func finish() throws {}

    /// Runs `setup()`, `handle()` and `finish()` with Python's semantics. Called once by the server.
    public final func run() throws {
        try setup()
        var handleFailure: (any Error)?
        do {
            try handle()
        } catch {
            handleFailure = error
        }
        try finish()
        if let handleFailure { throw handleFailure }
    }
}
