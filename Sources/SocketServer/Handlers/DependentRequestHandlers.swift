/// A request handler class that is built with a value of your choosing: its dependencies.
///
/// The three `Dependent…RequestHandler` classes conform; subclass one of them, and pass the subclass and the
/// value to a server initialiser (`TCPServer(_:handler:dependencies:)`), or build it yourself in a
/// `makeHandler` factory. A server initialiser that takes only a handler class (`handler:`) rejects such a
/// class, since it could not supply the dependencies.
///
/// Implementation requirements: conform through one of the library's `Dependent…RequestHandler` classes;
/// `init(_:dependencies:)` must store the value and call the superclass's initialiser with the context.
public protocol DependencyReceivingHandler: BaseRequestHandler {
    /// What each handler needs besides its request: one value shared by every request (a struct of
    /// references, an actor, a thread-safe store). It crosses threads in every mode but synchronous.
    associatedtype Dependencies: Sendable
    /// Creates the handler for one request.
    init(_ context: HandlerContext, dependencies: Dependencies)
}

/// A `BaseRequestHandler` with `dependencies`: subclass it (without writing an initialiser) and read
/// `dependencies` in `handle()`.
open class DependentRequestHandler<Dependencies: Sendable>: BaseRequestHandler, DependencyReceivingHandler {
    /// What the server was given for its handlers.
    public let dependencies: Dependencies

    /// Creates the handler for one request. Called by the server (or your factory) for each request.
    public required init(_ context: HandlerContext, dependencies: Dependencies) {
        self.dependencies = dependencies
        super.init(request: context.request, clientAddress: context.clientAddress, server: context.server)
    }

    /// Unavailable: a handler with dependencies is made with `init(_:dependencies:)`. A server given this
    /// class without dependencies refuses it when it is created, so this is never reached.
    @available(*, unavailable, message: "pass the dependencies: init(_:dependencies:)")
    public required init(request: Request, clientAddress: SocketAddress, server: BaseServer) {
        preconditionFailure("\(Self.self) needs its dependencies: create it with init(_:dependencies:)")
    }
}

/// A `StreamRequestHandler` with `dependencies`: subclass it (without writing an initialiser) and read
/// `dependencies` in `handle()`.
///
/// ```swift
/// final class CountingEcho: DependentStreamRequestHandler<Counter> {
///     override func handle() throws {
///         let line = try rfile.readLine()
///         try wfile.write("\(dependencies.increment()) \(String(decoding: line, as: UTF8.self))")
///     }
/// }
/// let server = try TCPServer(.loopback(), handler: CountingEcho.self, dependencies: Counter(),
///                            mode: ThreadPoolMode())
/// ```
open class DependentStreamRequestHandler<Dependencies: Sendable>: StreamRequestHandler, DependencyReceivingHandler {
    /// What the server was given for its handlers.
    public let dependencies: Dependencies

    /// Creates the handler for one request. Called by the server (or your factory) for each request.
    public required init(_ context: HandlerContext, dependencies: Dependencies) {
        self.dependencies = dependencies
        super.init(request: context.request, clientAddress: context.clientAddress, server: context.server)
    }

    /// Unavailable: a handler with dependencies is made with `init(_:dependencies:)`. A server given this
    /// class without dependencies refuses it when it is created, so this is never reached.
    @available(*, unavailable, message: "pass the dependencies: init(_:dependencies:)")
    public required init(request: Request, clientAddress: SocketAddress, server: BaseServer) {
        preconditionFailure("\(Self.self) needs its dependencies: create it with init(_:dependencies:)")
    }
}

/// A `DatagramRequestHandler` with `dependencies`: subclass it (without writing an initialiser) and read
/// `dependencies` in `handle()`.
open class DependentDatagramRequestHandler<Dependencies: Sendable>: DatagramRequestHandler, DependencyReceivingHandler {
    /// What the server was given for its handlers.
    public let dependencies: Dependencies

    /// Creates the handler for one datagram. Called by the server (or your factory) for each datagram.
    public required init(_ context: HandlerContext, dependencies: Dependencies) {
        self.dependencies = dependencies
        super.init(request: context.request, clientAddress: context.clientAddress, server: context.server)
    }

    /// Unavailable: a handler with dependencies is made with `init(_:dependencies:)`. A server given this
    /// class without dependencies refuses it when it is created, so this is never reached.
    @available(*, unavailable, message: "pass the dependencies: init(_:dependencies:)")
    public required init(request: Request, clientAddress: SocketAddress, server: BaseServer) {
        preconditionFailure("\(Self.self) needs its dependencies: create it with init(_:dependencies:)")
    }
}
