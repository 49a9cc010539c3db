import Logging

extension EventMode {
    /// An event mode whose datagrams are each answered by an async handler that `makeAsyncDatagramHandler`
    /// builds, in a task on one of the mode's loops (see `AsyncDatagramRequestHandler`). For `UDPServer` and
    /// `UnixDatagramServer`. `maxConnections` bounds the handlers running at once (default 4,096); `shutdownTimeout` how
    /// long `serverClose()` lets them finish.
    public convenience init(
        configuration: Configuration = Configuration(),
        makeAsyncDatagramHandler: @escaping @Sendable (AsyncDatagramContext) throws -> AsyncDatagramRequestHandler
    ) {
        self.init(configuration: configuration, asyncDatagrams: AsyncDatagramDispatcher(makeHandler: makeAsyncDatagramHandler))
    }
}

extension TCPServer {
    /// Creates a datagram server whose datagrams are each answered by an instance of `asyncHandler`, an
    /// async/await handler running on one of the mode's event loops.
    ///
    /// For `UDPServer` and `UnixDatagramServer` (IPv4 or IPv6); binds like the main initialiser.
    /// - Parameters:
    ///   - serverAddress: where to serve; port 0 picks a free port.
    ///   - asyncHandler: the handler class; one instance per datagram.
    ///   - configuration: the loops, `maxConnections` (handlers running at once, default 4,096) and
    ///     `shutdownTimeout`.
    ///   - serverConfiguration: the bind-time settings (`maxPacketSize`, reuse).
    ///   - logger: where `handleError` and diagnostics go.
    /// - Throws: `SocketServerError.handlerMismatch` on a stream server, `.invalidConfiguration`;
    ///   `SocketError` from `socket` or `bind`.
    public convenience init(
        _ serverAddress: SocketAddress,
        asyncHandler: AsyncDatagramRequestHandler.Type,
        configuration: EventMode.Configuration = EventMode.Configuration(),
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) throws {
        try self.init(
            serverAddress, configuration: configuration, serverConfiguration: serverConfiguration, logger: logger,
            makeAsyncDatagramHandler: { context in asyncHandler.init(context) }
        )
    }

    /// Creates a datagram server whose async handlers are instances of `asyncHandler` built with
    /// `dependencies`, the value they share.
    /// - Throws: as `init(_:asyncHandler:configuration:serverConfiguration:logger:)`.
    public convenience init<Handler: DependentAsyncDatagramRequestHandler<Dependencies>, Dependencies: Sendable>(
        _ serverAddress: SocketAddress,
        asyncHandler: Handler.Type,
        dependencies: Dependencies,
        configuration: EventMode.Configuration = EventMode.Configuration(),
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) throws {
        try self.init(
            serverAddress, configuration: configuration, serverConfiguration: serverConfiguration, logger: logger,
            makeAsyncDatagramHandler: { context in asyncHandler.init(context, dependencies: dependencies) }
        )
    }

    /// Creates a datagram server whose async handler for each datagram is built by
    /// `makeAsyncDatagramHandler`, in the datagram's task on its loop, from its context and whatever the
    /// closure captured.
    /// - Throws: as `init(_:asyncHandler:configuration:serverConfiguration:logger:)`.
    public convenience init(
        _ serverAddress: SocketAddress,
        configuration: EventMode.Configuration,
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil,
        makeAsyncDatagramHandler: @escaping @Sendable (AsyncDatagramContext) throws -> AsyncDatagramRequestHandler
    ) throws {
        try self.init(
            serverAddress,
            configuration: serverConfiguration,
            mode: EventMode(configuration: configuration, makeAsyncDatagramHandler: makeAsyncDatagramHandler),
            logger: logger,
            makeHandler: nil
        )
    }
}

extension TCPServer {
    /// Creates a datagram server around `listener` (a bound datagram socket, for example one inherited from
    /// systemd) whose datagrams are each answered by an instance of `asyncHandler` on the event loops; see
    /// `init(adopting:configuration:mode:logger:makeHandler:)`.
    /// - Throws: `SocketServerError.invalidListener`, `.invalidConfiguration` or `.handlerMismatch`.
    public convenience init(
        adopting listener: Socket,
        asyncHandler: AsyncDatagramRequestHandler.Type,
        configuration: EventMode.Configuration = EventMode.Configuration(),
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) throws {
        try self.init(
            adopting: listener, configuration: serverConfiguration,
            mode: EventMode(configuration: configuration, makeAsyncDatagramHandler: { context in asyncHandler.init(context) }),
            logger: logger, makeHandler: nil)
    }
}
