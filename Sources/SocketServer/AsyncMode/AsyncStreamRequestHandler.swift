/// An async/await handler for one connection of a stream server: `setup()`, `handle()`, `finish()` as in
/// `StreamRequestHandler`, with `rfile` and `wfile` that suspend instead of blocking.
///
/// Its task runs on the libevent loop that owns the connection (the loop is the task's executor), so a
/// read that is satisfied resumes on the thread that received the bytes, with no hop. Everything event mode
/// gives applies (`EventMode.Configuration`: input and output bounds, idle timeout, `maxConnections`,
/// graceful shutdown), and the server's hooks run as in event mode. Never block in a handler: a blocking
/// call stalls every connection of its loop; `await` work elsewhere instead (an actor, a thread pool) and
/// the handler comes back to its loop.
///
/// ```swift
/// final class AsyncEcho: AsyncStreamRequestHandler {
///     override func handle() async throws {
///         for try await line in rfile.lines { try await wfile.write(line) }
///     }
/// }
/// let server = try TCPServer(.loopback(), asyncHandler: AsyncEcho.self, configuration: .init(loops: 2))
/// ```
///
/// End of input is an empty read, as in Python. A reset, the idle timeout, the handler's `timeout` (per
/// read or write), or the server's shutdown deadline make the pending read or write throw; after the
/// deadline the task is also cancelled. An error
/// that `handle()` throws goes to the server's `handleError` (a closed connection's does not), and the
/// connection is closed once the handler returns and its output has been sent.
open class AsyncStreamRequestHandler {
    /// The connection's context: client address and server.
    public let context: AsyncHandlerContext
    /// The connection's input, with this handler's `maxLineLength` and `maxReadLength`.
    public private(set) lazy var rfile = AsyncRequestReader(
        driver: context.driver, maxLineLength: maxLineLength, maxReadLength: maxReadLength)
    /// The connection's output.
    public let wfile: AsyncRequestWriter

    /// A limit on each read that waits for input and each write or flush that waits for output to drain
    /// (Python's `timeout`, as `StreamRequestHandler.timeout`); nil, the default, waits for ever (the
    /// mode's `idleTimeout` still applies). An expired wait throws a `SocketError` with `isTimeout`; the
    /// connection stays open, so a handler may catch it and go on. Read once, before `setup()`.
    open var timeout: Duration? { nil }
    /// The longest line `rfile.readLine()` accepts before throwing `lineTooLong`. Default 64 KiB.
    open var maxLineLength: Int { 65536 }
    /// The largest count `rfile.read(_:)` accepts before throwing `readLengthOutOfRange`. Default
    /// `RequestReader.defaultMaxReadLength`, 16 MiB; a read only ever holds the bytes that arrived.
    open var maxReadLength: Int { RequestReader.defaultMaxReadLength }

    /// Creates the handler for one connection; called by the server, on the connection's loop.
    public required init(_ context: AsyncHandlerContext) {
        self.context = context
        self.wfile = AsyncRequestWriter(driver: context.driver)
    }

    /// The peer's address.
    public var clientAddress: SocketAddress { context.clientAddress }

    /// The server that accepted the connection.
    public var server: BaseServer { context.server }

    /// Prepares for `handle()`; does nothing here.
    open func setup() async throws {}

    /// Serves the connection; does nothing here. Override this.
    open func handle() async throws {}

    /// Cleans up after `handle()`, even when it threw; waits for queued output to be sent (`wfile.flush()`),
    /// ignoring a peer that has gone.
    open func finish() async throws {
        do {
            try await wfile.flush()
        } catch is AsyncConnectionClosed {
        } catch let error as SocketError where error.isDisconnect {
        }
    }

    /// Runs `setup()`, `handle()` and `finish()` with Python's semantics (finish runs when handle threw; its
    /// error wins).
    final func run() async throws {
        try await setup()
        var handleFailure: (any Error)?
        do {
            try await handle()
        } catch {
            handleFailure = error
        }
        try await finish()
        if let handleFailure { throw handleFailure }
    }
}

/// An `AsyncStreamRequestHandler` with `dependencies`: subclass it (without writing an initialiser) and
/// read `dependencies` in `handle()`; give the server the value
/// (`TCPServer(_:asyncHandler:dependencies:configuration:)`).
open class DependentAsyncStreamRequestHandler<Dependencies: Sendable>: AsyncStreamRequestHandler {
    /// What the server was given for its handlers; shared by every connection on every loop.
    public let dependencies: Dependencies

    /// Creates the handler for one connection, on its loop.
    public required init(_ context: AsyncHandlerContext, dependencies: Dependencies) {
        self.dependencies = dependencies
        super.init(context)
    }

    /// Unavailable: a handler with dependencies is made with `init(_:dependencies:)`.
    @available(*, unavailable, message: "pass the dependencies: init(_:dependencies:)")
    public required init(_ context: AsyncHandlerContext) {
        preconditionFailure("\(Self.self) needs its dependencies: create it with init(_:dependencies:)")
    }
}
