import SocketServer

/// A server that carries a `ServiceContext` for its handlers to find through `server`.
protocol ServiceHost: BaseServer {
    var context: ServiceContext { get }
}

extension BaseRequestHandler {
    /// The service context of the server that created this handler.
    /// - Throws: `SocketServerError.unexpectedRequest` when the handler runs under some other server.
    func serviceContext() throws -> ServiceContext {
        guard let host = server as? any ServiceHost else {
            throw SocketServerError.unexpectedRequest("\(type(of: self)) needs a server with a ServiceContext")
        }
        return host.context
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
