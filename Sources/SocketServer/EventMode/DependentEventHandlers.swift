/// What an event-mode handler factory receives for each accepted connection.
///
/// Passed to `makeEventHandler` on the loop that will own the connection, before `connectionOpened`.
public struct EventHandlerContext: Sendable {
    /// The peer's address.
    public let clientAddress: SocketAddress
    /// Which of the mode's loops owns the connection (0 ..< `loops`).
    public let loopIndex: Int
    private let unretainedServer: UnretainedServer
    /// The loop that owns the connection (the executor of async handlers).
    let loop: EventLoop

    init(clientAddress: SocketAddress, loopIndex: Int, server: UnretainedServer, loop: EventLoop) {
        self.clientAddress = clientAddress
        self.loopIndex = loopIndex
        self.unretainedServer = server
        self.loop = loop
    }

    /// The server that accepted the connection. Keep no reference to it in the handler beyond the
    /// connection's life: the server's `deinit` waits for the loops.
    public var server: BaseServer { unretainedServer.server }

    /// The server without a retain, for the async driver.
    var unretained: UnretainedServer { unretainedServer }
}

/// An `EventStreamHandler` with `dependencies`: subclass it (without writing an initialiser), read
/// `dependencies` in the callbacks, and give the server the value
/// (`TCPServer(_:eventHandler:dependencies:configuration:)`).
open class DependentEventStreamHandler<Dependencies: Sendable>: EventStreamHandler {
    /// What the server was given for its handlers; shared by every connection on every loop.
    public let dependencies: Dependencies

    /// Creates the handler for one connection, on the loop that owns it.
    public required init(dependencies: Dependencies) {
        self.dependencies = dependencies
        super.init()
    }

    /// Unavailable: a handler with dependencies is made with `init(dependencies:)`.
    @available(*, unavailable, message: "pass the dependencies: init(dependencies:)")
    public required init() {
        preconditionFailure("\(Self.self) needs its dependencies: create it with init(dependencies:)")
    }
}

/// An `EventDatagramHandler` with `dependencies`: subclass it (without writing an initialiser) and give
/// the server an instance (`UDPServer(_:eventHandler: MyHandler(dependencies: value))`).
open class DependentEventDatagramHandler<Dependencies: Sendable>: EventDatagramHandler {
    /// What the handler was created with.
    public let dependencies: Dependencies

    /// Creates the server's one datagram handler.
    public required init(dependencies: Dependencies) {
        self.dependencies = dependencies
        super.init()
    }

    /// Unavailable: a handler with dependencies is made with `init(dependencies:)`.
    @available(*, unavailable, message: "pass the dependencies: init(dependencies:)")
    public required init() {
        preconditionFailure("\(Self.self) needs its dependencies: create it with init(dependencies:)")
    }
}
