extension TCPServer {
    /// Creates a stream server in `EventMode` whose connections are served by instances of `eventHandler`.
    ///
    /// Works for `TCPServer` and `UnixStreamServer`; binds and listens like the main initialiser.
    /// - Throws: `SocketError` from `socket`, `bind` or `listen`.
    public convenience init(
        _ serverAddress: SocketAddress,
        eventHandler: EventStreamHandler.Type,
        configuration: EventMode.Configuration = EventMode.Configuration()
    ) throws {
        try self.init(
            serverAddress,
            handler: BaseRequestHandler.self,
            mode: EventMode(handler: eventHandler, configuration: configuration)
        )
    }

    /// Creates a datagram server in `EventMode` whose datagrams are answered by one `eventHandler`.
    ///
    /// For `UDPServer` and `UnixDatagramServer`.
    /// - Throws: `SocketError` from `socket` or `bind`.
    public convenience init(
        _ serverAddress: SocketAddress,
        eventHandler: EventDatagramHandler.Type,
        configuration: EventMode.Configuration = EventMode.Configuration()
    ) throws {
        try self.init(
            serverAddress,
            handler: BaseRequestHandler.self,
            mode: EventMode(datagramHandler: eventHandler, configuration: configuration)
        )
    }
}
