import Logging

extension EventMode {
    /// An event mode whose connections are served by async handlers that `makeAsyncHandler` builds, one
    /// per connection, each in a task that runs on the connection's loop (see `AsyncStreamRequestHandler`).
    /// For `TCPServer` and `UnixStreamServer`.
    public convenience init(
        configuration: Configuration = Configuration(),
        makeAsyncHandler: @escaping @Sendable (AsyncHandlerContext) throws -> AsyncStreamRequestHandler
    ) {
        let inputLimit = configuration.maxBufferedInput
        let lowWatermark = configuration.outputLowWatermark
        self.init(configuration: configuration) { context in
            AsyncConnectionDriver(
                context: context, inputLimit: inputLimit, outputLowWatermark: lowWatermark, makeHandler: makeAsyncHandler)
        }
    }
}

extension TCPServer {
    /// Creates a stream server whose connections are served by instances of `asyncHandler`, async/await
    /// handlers running on the mode's event loops.
    ///
    /// Works for `TCPServer` and `UnixStreamServer`; binds and listens like the main initialiser.
    /// - Parameters:
    ///   - serverAddress: where to serve; port 0 picks a free port.
    ///   - asyncHandler: the handler class; one instance per connection.
    ///   - configuration: the loops, limits and timeouts (as in event mode).
    ///   - serverConfiguration: the bind-time settings.
    ///   - logger: where `handleError` and diagnostics go.
    /// - Throws: `SocketServerError.handlerMismatch` on a datagram server, `.invalidConfiguration`;
    ///   `SocketError` from `socket`, `bind` or `listen`.
    public convenience init(
        _ serverAddress: SocketAddress,
        asyncHandler: AsyncStreamRequestHandler.Type,
        configuration: EventMode.Configuration = EventMode.Configuration(),
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) throws {
        try self.init(
            serverAddress, configuration: configuration, serverConfiguration: serverConfiguration, logger: logger
        ) { context in
            asyncHandler.init(context)
        }
    }

    /// Creates a stream server whose async handlers are instances of `asyncHandler` built with
    /// `dependencies`, the value they share.
    /// - Throws: as `init(_:asyncHandler:configuration:serverConfiguration:logger:)`.
    public convenience init<Handler: DependentAsyncStreamRequestHandler<Dependencies>, Dependencies: Sendable>(
        _ serverAddress: SocketAddress,
        asyncHandler: Handler.Type,
        dependencies: Dependencies,
        configuration: EventMode.Configuration = EventMode.Configuration(),
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) throws {
        try self.init(
            serverAddress, configuration: configuration, serverConfiguration: serverConfiguration, logger: logger
        ) { context in
            asyncHandler.init(context, dependencies: dependencies)
        }
    }

    /// Creates a stream server whose async handler for each connection is built by `makeAsyncHandler`, on
    /// the connection's loop, from its context and whatever the closure captured.
    /// - Throws: as `init(_:asyncHandler:configuration:serverConfiguration:logger:)`.
    public convenience init(
        _ serverAddress: SocketAddress,
        configuration: EventMode.Configuration,
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil,
        makeAsyncHandler: @escaping @Sendable (AsyncHandlerContext) throws -> AsyncStreamRequestHandler
    ) throws {
        try self.init(
            serverAddress,
            configuration: serverConfiguration,
            mode: EventMode(configuration: configuration, makeAsyncHandler: makeAsyncHandler),
            logger: logger,
            makeHandler: nil
        )
    }
}
