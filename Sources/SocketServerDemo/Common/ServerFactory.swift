import Logging
import SocketServer

/// Builds a service's server, stream or datagram, around an inherited listener or on its own address, with
/// the right class for the listener's family (a Unix socket gets the Unix class).
struct ServerFactory {
    /// Stream or datagram.
    let type: SocketType
    let mode: any ConcurrencyMode
    let logger: Logger
    let makeHandler: (@Sendable (HandlerContext) -> BaseRequestHandler)?
    /// The service's settings (its PROXY protocol ones, say) for a Unix (true) or an IP listener.
    var configuration: (_ unix: Bool) throws -> ServerConfiguration = { _ in ServerConfiguration() }
    /// With a Unix stream listener: serve only peers of this uid (`echo --allow-uid`, an `AllowedUserServer`).
    var allowedUID: UInt32?
    /// Applied to every server made, before it serves (`--tls-cert` and friends: `TLSOptions.apply`).
    var prepare: (TCPServer) throws -> Void = { _ in }

    /// A server around `listener`.
    /// - Throws: `SocketServerError.invalidListener` when the listener does not fit the service.
    func adopting(_ listener: Socket) throws -> TCPServer {
        let unix = listener.family == .unix
        let settings = try configuration(unix)
        let server: TCPServer = switch (type, unix) {
        case (.stream, true) where allowedUID != nil:
            try AllowedUserServer(adopting: listener, configuration: settings, mode: mode, logger: logger, makeHandler: makeHandler)
        case (.stream, true):
            try UnixStreamServer(adopting: listener, configuration: settings, mode: mode, logger: logger, makeHandler: makeHandler)
        case (.stream, false):
            try TCPServer(adopting: listener, configuration: settings, mode: mode, logger: logger, makeHandler: makeHandler)
        case (.datagram, true):
            try UnixDatagramServer(adopting: listener, configuration: settings, mode: mode, logger: logger, makeHandler: makeHandler)
        case (.datagram, false):
            try UDPServer(adopting: listener, configuration: settings, mode: mode, logger: logger, makeHandler: makeHandler)
        }
        return try prepared(server)
    }

    /// A server bound to `address` (and listening, for a stream server), with `configuration`, or by default
    /// the service's settings.
    func binding(_ address: SocketAddress, configuration given: ServerConfiguration? = nil) throws -> TCPServer {
        let unix = address.family == .unix
        let configuration = try given ?? self.configuration(unix)
        let server: TCPServer = switch (type, unix) {
        case (.stream, true) where allowedUID != nil:
            try AllowedUserServer(address, configuration: configuration, mode: mode, logger: logger, makeHandler: makeHandler)
        case (.stream, true):
            try UnixStreamServer(address, configuration: configuration, mode: mode, logger: logger, makeHandler: makeHandler)
        case (.stream, false):
            try TCPServer(address, configuration: configuration, mode: mode, logger: logger, makeHandler: makeHandler)
        case (.datagram, true):
            try UnixDatagramServer(address, configuration: configuration, mode: mode, logger: logger, makeHandler: makeHandler)
        case (.datagram, false):
            try UDPServer(address, configuration: configuration, mode: mode, logger: logger, makeHandler: makeHandler)
        }
        return try prepared(server)
    }

    /// `server` with `allowedUID` and `prepare` applied; closed when `prepare` throws.
    private func prepared(_ server: TCPServer) throws -> TCPServer {
        (server as? AllowedUserServer)?.allowedUID = allowedUID
        do {
            try prepare(server)
        } catch {
            server.serverClose()
            throw error
        }
        return server
    }

    /// The same factory for a process that binds but never serves (a worker group's master): one request at a
    /// time, and no handler is ever made.
    var forListenersOnly: ServerFactory {
        ServerFactory(type: type, mode: SynchronousMode(), logger: logger) { context in
            BaseRequestHandler(request: context.request, clientAddress: context.clientAddress, server: context.server)
        }
    }
}
