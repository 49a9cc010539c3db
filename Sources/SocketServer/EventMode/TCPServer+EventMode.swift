import Logging

extension TCPServer {
    /// Creates a stream server in `EventMode` whose connections are served by instances of `eventHandler`.
    ///
    /// Works for `TCPServer` and `UnixStreamServer`; binds and listens like the main initialiser. No
    /// `BaseRequestHandler` is involved: `finishRequest` is never called for an event-mode server.
    /// - Parameters:
    ///   - serverAddress: where to serve; port 0 picks a free port.
    ///   - eventHandler: the handler class; one instance per connection, made on the connection's loop.
    ///   - configuration: the event mode's loops, limits and timeouts.
    ///   - serverConfiguration: the bind-time settings (reuse, backlog, dual stack).
    ///   - logger: where `handleError` and diagnostics go.
    /// - Throws: `SocketServerError.handlerMismatch` on a datagram server, `.invalidConfiguration`;
    ///   `SocketError` from `socket`, `bind` or `listen`.
    public convenience init(
        _ serverAddress: SocketAddress,
        eventHandler: EventStreamHandler.Type,
        configuration: EventMode.Configuration = EventMode.Configuration(),
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) throws {
        try self.init(
            serverAddress,
            configuration: serverConfiguration,
            mode: EventMode(handler: eventHandler, configuration: configuration),
            logger: logger,
            makeHandler: nil
        )
    }

    /// Creates a stream server in `EventMode` whose connection handlers are instances of `eventHandler`
    /// built with `dependencies`, the value they share.
    /// - Throws: as `init(_:eventHandler:configuration:serverConfiguration:logger:)`.
    public convenience init<Handler: DependentEventStreamHandler<Dependencies>, Dependencies: Sendable>(
        _ serverAddress: SocketAddress,
        eventHandler: Handler.Type,
        dependencies: Dependencies,
        configuration: EventMode.Configuration = EventMode.Configuration(),
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) throws {
        try self.init(
            serverAddress,
            configuration: configuration,
            serverConfiguration: serverConfiguration,
            logger: logger
        ) { _ in
            eventHandler.init(dependencies: dependencies)
        }
    }

    /// Creates a stream server in `EventMode` whose handler for each connection is built by
    /// `makeEventHandler`, on the loop that will own the connection, from its context and whatever the
    /// closure captured (so that must be thread-safe).
    ///
    /// ```swift
    /// let counter = Counter()
    /// let server = try TCPServer(.loopback(port: 8000), configuration: .init(loops: 2)) { _ in
    ///     CountingLineEcho(counter: counter)
    /// }
    /// ```
    /// - Throws: as `init(_:eventHandler:configuration:serverConfiguration:logger:)`.
    public convenience init(
        _ serverAddress: SocketAddress,
        configuration: EventMode.Configuration,
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil,
        makeEventHandler: @escaping @Sendable (EventHandlerContext) -> EventStreamHandler
    ) throws {
        try self.init(
            serverAddress,
            configuration: serverConfiguration,
            mode: EventMode(configuration: configuration, makeHandler: makeEventHandler),
            logger: logger,
            makeHandler: nil
        )
    }

    /// Creates a datagram server in `EventMode` whose datagrams are answered by one `eventHandler`.
    ///
    /// For `UDPServer` and `UnixDatagramServer`.
    /// - Throws: `SocketServerError.handlerMismatch` on a stream server, `.invalidConfiguration`;
    ///   `SocketError` from `socket` or `bind`.
    public convenience init(
        _ serverAddress: SocketAddress,
        eventHandler: EventDatagramHandler.Type,
        configuration: EventMode.Configuration = EventMode.Configuration(),
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) throws {
        try self.init(
            serverAddress,
            configuration: serverConfiguration,
            mode: EventMode(datagramHandler: eventHandler, configuration: configuration),
            logger: logger,
            makeHandler: nil
        )
    }

    /// Creates a datagram server in `EventMode` whose datagrams are all answered by `eventHandler`, an
    /// instance you built with what it needs (for example a `DependentEventDatagramHandler`).
    /// - Throws: as `init(_:eventHandler:configuration:serverConfiguration:logger:)`.
    public convenience init(
        _ serverAddress: SocketAddress,
        eventHandler: sending EventDatagramHandler,
        configuration: EventMode.Configuration = EventMode.Configuration(),
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) throws {
        try self.init(
            serverAddress,
            configuration: serverConfiguration,
            mode: EventMode(datagramHandler: eventHandler, configuration: configuration),
            logger: logger,
            makeHandler: nil
        )
    }
}
