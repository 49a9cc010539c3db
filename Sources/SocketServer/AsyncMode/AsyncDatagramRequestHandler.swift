/// An async/await handler for one datagram of a `UDPServer` or `UnixDatagramServer`: `setup()`, `handle()`,
/// `finish()` as in `DatagramRequestHandler`, with `packet`, and `reply(_:)` that never blocks.
///
/// The server reads datagrams on its own loop (the thread in `serveForever`), runs `verifyRequest` and the
/// other hooks there, and starts one task per datagram on one of the mode's event loops, round robin; the
/// handler is created and runs in that task, on that loop's thread, so datagrams are handled concurrently
/// while handlers `await` other work. At most `maxConnections` handlers run at once (default 4,096):
/// at the limit the server stops reading its socket and the kernel's receive buffer holds (or drops, as a
/// network may) what arrives. `shutdown()` stops reading; `serverClose()` lets running handlers finish for up
/// to `shutdownTimeout`, then cancels their tasks.
///
/// ```swift
/// final class AsyncUDPEcho: AsyncDatagramRequestHandler {
///     override func handle() async throws { try reply(packet) }
/// }
/// let server = try UDPServer(.loopback(), asyncHandler: AsyncUDPEcho.self, configuration: .init(loops: 2))
/// ```
///
/// An error that `setup()`, `handle()` or `finish()` throws goes to the server's `handleError` (on the
/// loop), then `shutdownRequest` runs, as for every request. Never block in a handler: a blocking call
/// stalls every handler of its loop; `await` work elsewhere instead.
open class AsyncDatagramRequestHandler {
    /// The datagram, its sender, the server, and `reply`.
    public let context: AsyncDatagramContext

    /// Creates the handler for one datagram; called by the server in the datagram's task, on its loop.
    public required init(_ context: AsyncDatagramContext) {
        self.context = context
    }

    /// The received bytes, cut to the server's `maxPacketSize`.
    public var packet: [UInt8] { context.packet }

    /// The sender's address.
    public var clientAddress: SocketAddress { context.clientAddress }

    /// The server that received the datagram.
    public var server: BaseServer { context.server }

    /// Sends `bytes` back to the sender as one datagram, without waiting; false when the socket's buffer
    /// is full and the reply was dropped.
    /// - Throws: `SocketError` when the system refuses it (for example an unnamed Unix client).
    @discardableResult
    public func reply(_ bytes: [UInt8]) throws -> Bool { try context.reply(bytes) }

    /// Sends `text` as UTF-8 back to the sender as one datagram, without waiting; false when dropped.
    @discardableResult
    public func reply(_ text: String) throws -> Bool { try context.reply(text) }

    /// Prepares for `handle()`; does nothing here.
    open func setup() async throws {}

    /// Answers the datagram; does nothing here. Override this.
    open func handle() async throws {}

    /// Cleans up after `handle()`, even when it threw; does nothing here.
    open func finish() async throws {}

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

/// An `AsyncDatagramRequestHandler` with `dependencies`: subclass it (without writing an initialiser) and
/// read `dependencies` in `handle()`; give the server the value
/// (`UDPServer(_:asyncHandler:dependencies:configuration:)`).
open class DependentAsyncDatagramRequestHandler<Dependencies: Sendable>: AsyncDatagramRequestHandler {
    /// What the server was given for its handlers; shared by every datagram on every loop.
    public let dependencies: Dependencies

    /// Creates the handler for one datagram, on its loop.
    public required init(_ context: AsyncDatagramContext, dependencies: Dependencies) {
        self.dependencies = dependencies
        super.init(context)
    }

    /// Unavailable: a handler with dependencies is made with `init(_:dependencies:)`.
    @available(*, unavailable, message: "pass the dependencies: init(_:dependencies:)")
    public required init(_ context: AsyncDatagramContext) {
        preconditionFailure("\(Self.self) needs its dependencies: create it with init(_:dependencies:)")
    }
}
