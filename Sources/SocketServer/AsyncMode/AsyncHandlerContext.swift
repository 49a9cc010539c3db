/// What an async handler factory receives for each accepted connection, and what the handler keeps.
///
/// Bound to the connection's event loop: use it (and the handler) only from the handler's own task, which
/// runs on that loop.
public struct AsyncHandlerContext {
    let driver: AsyncConnectionDriver

    init(driver: AsyncConnectionDriver) {
        self.driver = driver
    }

    /// The connection's socket, for a security layer's view of it; nil before the connection opened.
    package var socket: Socket? { driver.connection?.socket }

    /// The peer's address.
    public var clientAddress: SocketAddress { driver.clientAddress }

    /// Whether the server has begun shutting down: a read that would wait with nothing buffered now ends
    /// the input (an empty read), so a handler finishes the request it is in and returns.
    public var isShuttingDown: Bool { driver.isShuttingDown }

    /// The server that accepted the connection. Do not keep it beyond the handler's life: the server's
    /// `deinit` waits for its loops.
    public var server: BaseServer { driver.unretainedServer.server }
}
