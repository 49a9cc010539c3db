import Logging

/// A TCP server handling each request on its own thread: Python's `socketserver.ThreadingTCPServer`.
///
/// A `TCPServer` whose `mode` is a `ThreadingMode`. Python's class attributes are properties forwarding to
/// that mode; set them before serving, or override them in a subclass (the initialiser reads the overrides):
///
/// ```swift
/// final class QuietServer: ThreadingTCPServer, @unchecked Sendable {
///     override var daemonThreads: Bool { get { true } set {} }
/// }
/// ```
open class ThreadingTCPServer: TCPServer, @unchecked Sendable {
    /// The mode running this server's requests.
    public let threadingMode: ThreadingMode

    /// Creates the server as `TCPServer` does, running requests on threads.
    ///
    /// - Parameters:
    ///   - serverAddress: where to serve; port 0 picks one.
    ///   - handler: the request handler class.
    ///   - bindAndActivate: false leaves the socket created but unbound.
    ///   - mode: the threading mode; pass one to set `maxConcurrentRequests`. Defaults to the reference's
    ///     settings (non-daemon threads, joined on close, no cap).
    /// - Throws: `SocketError` from `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        bindAndActivate: Bool = true,
        mode: ThreadingMode = ThreadingMode()
    ) throws {
        threadingMode = mode
        try super.init(serverAddress, handler: handler, bindAndActivate: bindAndActivate, mode: mode)
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        threadingMode.daemonThreads = daemonThreads
        threadingMode.blockOnClose = blockOnClose
    }

    /// Creates the server with bind-time settings, a logger and a factory that builds each request's
    /// handler (see `TCPServer.init(_:configuration:mode:logger:bindAndActivate:makeHandler:)`).
    /// - Throws: `SocketServerError.invalidConfiguration` or `.handlerMismatch`; `SocketError` from
    ///   `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil,
        bindAndActivate: Bool = true,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        threadingMode = mode
        try super.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger,
            bindAndActivate: bindAndActivate, makeHandler: makeHandler
        )
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        threadingMode.daemonThreads = daemonThreads
        threadingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener`, an inherited bound socket (see
    /// `TCPServer.init(adopting:configuration:mode:logger:makeHandler:)`), with a factory that builds each
    /// request's handler.
    /// - Throws: `SocketServerError.invalidListener`, `.invalidConfiguration` or `.handlerMismatch`.
    public init(
        adopting listener: Socket,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        threadingMode = mode
        try super.init(
            adopting: listener, configuration: configuration, mode: mode, logger: logger, makeHandler: makeHandler)
        threadingMode.daemonThreads = daemonThreads
        threadingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener` for instances of `handler`.
    /// - Throws: as `init(adopting:configuration:mode:logger:makeHandler:)`.
    public convenience init(
        adopting listener: Socket,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil
    ) throws {
        try Self.checkHandler(handler, mode: mode)
        try self.init(
            adopting: listener, configuration: configuration, mode: mode, logger: logger,
            makeHandler: HandlerSource.makeHandler(for: handler))
        handlerSource = .type(handler)
    }

    /// Creates the server for instances of `handler`, with bind-time settings and a logger.
    /// - Throws: as `init(_:configuration:mode:logger:bindAndActivate:makeHandler:)`.
    public convenience init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil,
        bindAndActivate: Bool = true
    ) throws {
        try Self.checkHandler(handler, mode: mode)
        try self.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger,
            bindAndActivate: bindAndActivate, makeHandler: HandlerSource.makeHandler(for: handler)
        )
        handlerSource = .type(handler)
    }

    /// Python's `daemon_threads`: when true, `serverClose()` does not wait for handler threads. Default false.
    open var daemonThreads: Bool {
        get { threadingMode.daemonThreads }
        set { threadingMode.daemonThreads = newValue }
    }

    /// Python's `block_on_close`: when true, `serverClose()` joins the non-daemon handler threads. Default true.
    open var blockOnClose: Bool {
        get { threadingMode.blockOnClose }
        set { threadingMode.blockOnClose = newValue }
    }
}

/// A UDP server handling each request on its own thread: Python's `socketserver.ThreadingUDPServer`.
///
/// A `UDPServer` whose `mode` is a `ThreadingMode`. Python's class attributes are properties forwarding to
/// that mode; set them before serving, or override them in a subclass (the initialiser reads the overrides):
///
/// ```swift
/// final class QuietServer: ThreadingUDPServer, @unchecked Sendable {
///     override var daemonThreads: Bool { get { true } set {} }
/// }
/// ```
open class ThreadingUDPServer: UDPServer, @unchecked Sendable {
    /// The mode running this server's requests.
    public let threadingMode: ThreadingMode

    /// Creates the server as `UDPServer` does, running requests on threads.
    ///
    /// - Parameters:
    ///   - serverAddress: where to serve; port 0 picks one.
    ///   - handler: the request handler class.
    ///   - bindAndActivate: false leaves the socket created but unbound.
    ///   - mode: the threading mode; pass one to set `maxConcurrentRequests`. Defaults to the reference's
    ///     settings (non-daemon threads, joined on close, no cap).
    /// - Throws: `SocketError` from `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        bindAndActivate: Bool = true,
        mode: ThreadingMode = ThreadingMode()
    ) throws {
        threadingMode = mode
        try super.init(serverAddress, handler: handler, bindAndActivate: bindAndActivate, mode: mode)
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        threadingMode.daemonThreads = daemonThreads
        threadingMode.blockOnClose = blockOnClose
    }

    /// Creates the server with bind-time settings, a logger and a factory that builds each request's
    /// handler (see `TCPServer.init(_:configuration:mode:logger:bindAndActivate:makeHandler:)`).
    /// - Throws: `SocketServerError.invalidConfiguration` or `.handlerMismatch`; `SocketError` from
    ///   `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil,
        bindAndActivate: Bool = true,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        threadingMode = mode
        try super.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger,
            bindAndActivate: bindAndActivate, makeHandler: makeHandler
        )
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        threadingMode.daemonThreads = daemonThreads
        threadingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener`, an inherited bound socket (see
    /// `TCPServer.init(adopting:configuration:mode:logger:makeHandler:)`), with a factory that builds each
    /// request's handler.
    /// - Throws: `SocketServerError.invalidListener`, `.invalidConfiguration` or `.handlerMismatch`.
    public init(
        adopting listener: Socket,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        threadingMode = mode
        try super.init(
            adopting: listener, configuration: configuration, mode: mode, logger: logger, makeHandler: makeHandler)
        threadingMode.daemonThreads = daemonThreads
        threadingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener` for instances of `handler`.
    /// - Throws: as `init(adopting:configuration:mode:logger:makeHandler:)`.
    public convenience init(
        adopting listener: Socket,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil
    ) throws {
        try Self.checkHandler(handler, mode: mode)
        try self.init(
            adopting: listener, configuration: configuration, mode: mode, logger: logger,
            makeHandler: HandlerSource.makeHandler(for: handler))
        handlerSource = .type(handler)
    }

    /// Creates the server for instances of `handler`, with bind-time settings and a logger.
    /// - Throws: as `init(_:configuration:mode:logger:bindAndActivate:makeHandler:)`.
    public convenience init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil,
        bindAndActivate: Bool = true
    ) throws {
        try Self.checkHandler(handler, mode: mode)
        try self.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger,
            bindAndActivate: bindAndActivate, makeHandler: HandlerSource.makeHandler(for: handler)
        )
        handlerSource = .type(handler)
    }

    /// Python's `daemon_threads`: when true, `serverClose()` does not wait for handler threads. Default false.
    open var daemonThreads: Bool {
        get { threadingMode.daemonThreads }
        set { threadingMode.daemonThreads = newValue }
    }

    /// Python's `block_on_close`: when true, `serverClose()` joins the non-daemon handler threads. Default true.
    open var blockOnClose: Bool {
        get { threadingMode.blockOnClose }
        set { threadingMode.blockOnClose = newValue }
    }
}

/// A Unix stream server handling each request on its own thread: Python's `socketserver.ThreadingUnixStreamServer`.
///
/// A `UnixStreamServer` whose `mode` is a `ThreadingMode`. Python's class attributes are properties forwarding to
/// that mode; set them before serving, or override them in a subclass (the initialiser reads the overrides):
///
/// ```swift
/// final class QuietServer: ThreadingUnixStreamServer, @unchecked Sendable {
///     override var daemonThreads: Bool { get { true } set {} }
/// }
/// ```
open class ThreadingUnixStreamServer: UnixStreamServer, @unchecked Sendable {
    /// The mode running this server's requests.
    public let threadingMode: ThreadingMode

    /// Creates the server as `UnixStreamServer` does, running requests on threads.
    ///
    /// - Parameters:
    ///   - serverAddress: where to serve; port 0 picks one.
    ///   - handler: the request handler class.
    ///   - bindAndActivate: false leaves the socket created but unbound.
    ///   - mode: the threading mode; pass one to set `maxConcurrentRequests`. Defaults to the reference's
    ///     settings (non-daemon threads, joined on close, no cap).
    /// - Throws: `SocketError` from `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        bindAndActivate: Bool = true,
        mode: ThreadingMode = ThreadingMode()
    ) throws {
        threadingMode = mode
        try super.init(serverAddress, handler: handler, bindAndActivate: bindAndActivate, mode: mode)
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        threadingMode.daemonThreads = daemonThreads
        threadingMode.blockOnClose = blockOnClose
    }

    /// Creates the server with bind-time settings, a logger and a factory that builds each request's
    /// handler (see `TCPServer.init(_:configuration:mode:logger:bindAndActivate:makeHandler:)`).
    /// - Throws: `SocketServerError.invalidConfiguration` or `.handlerMismatch`; `SocketError` from
    ///   `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil,
        bindAndActivate: Bool = true,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        threadingMode = mode
        try super.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger,
            bindAndActivate: bindAndActivate, makeHandler: makeHandler
        )
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        threadingMode.daemonThreads = daemonThreads
        threadingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener`, an inherited bound socket (see
    /// `TCPServer.init(adopting:configuration:mode:logger:makeHandler:)`), with a factory that builds each
    /// request's handler.
    /// - Throws: `SocketServerError.invalidListener`, `.invalidConfiguration` or `.handlerMismatch`.
    public init(
        adopting listener: Socket,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        threadingMode = mode
        try super.init(
            adopting: listener, configuration: configuration, mode: mode, logger: logger, makeHandler: makeHandler)
        threadingMode.daemonThreads = daemonThreads
        threadingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener` for instances of `handler`.
    /// - Throws: as `init(adopting:configuration:mode:logger:makeHandler:)`.
    public convenience init(
        adopting listener: Socket,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil
    ) throws {
        try Self.checkHandler(handler, mode: mode)
        try self.init(
            adopting: listener, configuration: configuration, mode: mode, logger: logger,
            makeHandler: HandlerSource.makeHandler(for: handler))
        handlerSource = .type(handler)
    }

    /// Creates the server for instances of `handler`, with bind-time settings and a logger.
    /// - Throws: as `init(_:configuration:mode:logger:bindAndActivate:makeHandler:)`.
    public convenience init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil,
        bindAndActivate: Bool = true
    ) throws {
        try Self.checkHandler(handler, mode: mode)
        try self.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger,
            bindAndActivate: bindAndActivate, makeHandler: HandlerSource.makeHandler(for: handler)
        )
        handlerSource = .type(handler)
    }

    /// Python's `daemon_threads`: when true, `serverClose()` does not wait for handler threads. Default false.
    open var daemonThreads: Bool {
        get { threadingMode.daemonThreads }
        set { threadingMode.daemonThreads = newValue }
    }

    /// Python's `block_on_close`: when true, `serverClose()` joins the non-daemon handler threads. Default true.
    open var blockOnClose: Bool {
        get { threadingMode.blockOnClose }
        set { threadingMode.blockOnClose = newValue }
    }
}

/// A Unix datagram server handling each request on its own thread: Python's `socketserver.ThreadingUnixDatagramServer`.
///
/// A `UnixDatagramServer` whose `mode` is a `ThreadingMode`. Python's class attributes are properties forwarding to
/// that mode; set them before serving, or override them in a subclass (the initialiser reads the overrides):
///
/// ```swift
/// final class QuietServer: ThreadingUnixDatagramServer, @unchecked Sendable {
///     override var daemonThreads: Bool { get { true } set {} }
/// }
/// ```
open class ThreadingUnixDatagramServer: UnixDatagramServer, @unchecked Sendable {
    /// The mode running this server's requests.
    public let threadingMode: ThreadingMode

    /// Creates the server as `UnixDatagramServer` does, running requests on threads.
    ///
    /// - Parameters:
    ///   - serverAddress: where to serve; port 0 picks one.
    ///   - handler: the request handler class.
    ///   - bindAndActivate: false leaves the socket created but unbound.
    ///   - mode: the threading mode; pass one to set `maxConcurrentRequests`. Defaults to the reference's
    ///     settings (non-daemon threads, joined on close, no cap).
    /// - Throws: `SocketError` from `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        bindAndActivate: Bool = true,
        mode: ThreadingMode = ThreadingMode()
    ) throws {
        threadingMode = mode
        try super.init(serverAddress, handler: handler, bindAndActivate: bindAndActivate, mode: mode)
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        threadingMode.daemonThreads = daemonThreads
        threadingMode.blockOnClose = blockOnClose
    }

    /// Creates the server with bind-time settings, a logger and a factory that builds each request's
    /// handler (see `TCPServer.init(_:configuration:mode:logger:bindAndActivate:makeHandler:)`).
    /// - Throws: `SocketServerError.invalidConfiguration` or `.handlerMismatch`; `SocketError` from
    ///   `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil,
        bindAndActivate: Bool = true,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        threadingMode = mode
        try super.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger,
            bindAndActivate: bindAndActivate, makeHandler: makeHandler
        )
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        threadingMode.daemonThreads = daemonThreads
        threadingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener`, an inherited bound socket (see
    /// `TCPServer.init(adopting:configuration:mode:logger:makeHandler:)`), with a factory that builds each
    /// request's handler.
    /// - Throws: `SocketServerError.invalidListener`, `.invalidConfiguration` or `.handlerMismatch`.
    public init(
        adopting listener: Socket,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        threadingMode = mode
        try super.init(
            adopting: listener, configuration: configuration, mode: mode, logger: logger, makeHandler: makeHandler)
        threadingMode.daemonThreads = daemonThreads
        threadingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener` for instances of `handler`.
    /// - Throws: as `init(adopting:configuration:mode:logger:makeHandler:)`.
    public convenience init(
        adopting listener: Socket,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil
    ) throws {
        try Self.checkHandler(handler, mode: mode)
        try self.init(
            adopting: listener, configuration: configuration, mode: mode, logger: logger,
            makeHandler: HandlerSource.makeHandler(for: handler))
        handlerSource = .type(handler)
    }

    /// Creates the server for instances of `handler`, with bind-time settings and a logger.
    /// - Throws: as `init(_:configuration:mode:logger:bindAndActivate:makeHandler:)`.
    public convenience init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ThreadingMode = ThreadingMode(),
        logger: Logger? = nil,
        bindAndActivate: Bool = true
    ) throws {
        try Self.checkHandler(handler, mode: mode)
        try self.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger,
            bindAndActivate: bindAndActivate, makeHandler: HandlerSource.makeHandler(for: handler)
        )
        handlerSource = .type(handler)
    }

    /// Python's `daemon_threads`: when true, `serverClose()` does not wait for handler threads. Default false.
    open var daemonThreads: Bool {
        get { threadingMode.daemonThreads }
        set { threadingMode.daemonThreads = newValue }
    }

    /// Python's `block_on_close`: when true, `serverClose()` joins the non-daemon handler threads. Default true.
    open var blockOnClose: Bool {
        get { threadingMode.blockOnClose }
        set { threadingMode.blockOnClose = newValue }
    }
}
