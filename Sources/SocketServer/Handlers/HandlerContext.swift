/// What a handler factory receives for each request: the request, who sent it, and the server.
///
/// Passed to the `makeHandler` closure of a server initialiser, which returns the handler for that request;
/// the closure adds whatever it captured (a database pool, a cache, a configuration). Runs where the mode
/// runs the request (see `BaseServer`'s "Threads"), so what the closure captures must be thread-safe in
/// every mode but synchronous.
public struct HandlerContext: Sendable {
    /// The request: a connection, a datagram, or what a custom `getRequest()` produced.
    public let request: Request
    /// Who sent it.
    public let clientAddress: SocketAddress
    /// The server that received it.
    public let server: BaseServer

    /// Groups a request with its sender and server.
    public init(request: Request, clientAddress: SocketAddress, server: BaseServer) {
        self.request = request
        self.clientAddress = clientAddress
        self.server = server
    }
}

/// How a server gets the handler for a request.
enum HandlerSource: Sendable {
    /// Python's way: instantiate this class.
    case type(BaseRequestHandler.Type)
    /// Call this factory.
    case factory(@Sendable (HandlerContext) throws -> BaseRequestHandler)
    /// The mode makes its own handlers (`EventMode`); `finishRequest` is never called.
    case mode
}

extension HandlerSource {
    /// A factory that instantiates `type` with its required initialiser.
    static func makeHandler(for type: BaseRequestHandler.Type) -> @Sendable (HandlerContext) throws -> BaseRequestHandler {
        { context in type.init(request: context.request, clientAddress: context.clientAddress, server: context.server) }
    }
}
