import SocketServer

/// A server that carries a `ServiceContext` for its handlers to find through `server`.
protocol ServiceHost: BaseServer {
    var context: ServiceContext { get }
}

extension ServiceContext {
    /// The service context of `server`.
    /// - Throws: `SocketServerError.unexpectedRequest` when a handler runs under some other server.
    static func of(_ server: BaseServer) throws -> ServiceContext {
        guard let host = server as? any ServiceHost else {
            throw SocketServerError.unexpectedRequest("demo handlers need a server with a ServiceContext")
        }
        return host.context
    }
}

extension BaseRequestHandler {
    /// The service context of the server that created this handler.
    func serviceContext() throws -> ServiceContext {
        try ServiceContext.of(server)
    }
}

/// `TCPServer` with a service context.
final class ServiceTCPServer: TCPServer, ServiceHost, @unchecked Sendable {
    let context: ServiceContext

    init(
        _ address: SocketAddress, handler: BaseRequestHandler.Type, mode: any ConcurrencyMode, context: ServiceContext
    ) throws {
        self.context = context
        try super.init(address, handler: handler, mode: mode)
        logger = context.logger
    }
}

/// `UnixStreamServer` with a service context.
final class ServiceUnixStreamServer: UnixStreamServer, ServiceHost, @unchecked Sendable {
    let context: ServiceContext

    init(
        _ address: SocketAddress, handler: BaseRequestHandler.Type, mode: any ConcurrencyMode, context: ServiceContext
    ) throws {
        self.context = context
        try super.init(address, handler: handler, mode: mode)
        logger = context.logger
    }
}

/// `UDPServer` with a service context.
final class ServiceUDPServer: UDPServer, ServiceHost, @unchecked Sendable {
    let context: ServiceContext

    init(
        _ address: SocketAddress, handler: BaseRequestHandler.Type, mode: any ConcurrencyMode, context: ServiceContext
    ) throws {
        self.context = context
        try super.init(address, handler: handler, mode: mode)
        logger = context.logger
    }
}

/// `UnixDatagramServer` with a service context.
final class ServiceUnixDatagramServer: UnixDatagramServer, ServiceHost, @unchecked Sendable {
    let context: ServiceContext

    init(
        _ address: SocketAddress, handler: BaseRequestHandler.Type, mode: any ConcurrencyMode, context: ServiceContext
    ) throws {
        self.context = context
        try super.init(address, handler: handler, mode: mode)
        logger = context.logger
    }
}
