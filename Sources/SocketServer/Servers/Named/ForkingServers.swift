import Glibc
import Logging

/// A TCP server handling each request in a child process: Python's `socketserver.ForkingTCPServer`.
///
/// A `TCPServer` whose `mode` is a `ForkingMode`, with `timeout` defaulting to 300 seconds as in the
/// reference (it only bounds `handleRequest()`'s wait). Python's attributes are properties forwarding to the
/// mode; set them before serving, or override them in a subclass (the initialiser reads the overrides).
open class ForkingTCPServer: TCPServer, @unchecked Sendable {
    /// The mode running this server's requests.
    public let forkingMode: ForkingMode

    /// Creates the server as `TCPServer` does, running requests in child processes.
    ///
    /// - Parameters:
    ///   - serverAddress: where to serve; port 0 picks one.
    ///   - handler: the request handler class.
    ///   - bindAndActivate: false leaves the socket created but unbound.
    ///   - mode: the forking mode; pass one to observe exit statuses. Defaults to the reference's settings
    ///     (`maxChildren` 40, `blockOnClose` true).
    /// - Throws: `SocketError` from `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        bindAndActivate: Bool = true,
        mode: ForkingMode = ForkingMode()
    ) throws {
        forkingMode = mode
        try super.init(serverAddress, handler: handler, bindAndActivate: bindAndActivate, mode: mode)
        timeout = .seconds(300)
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        forkingMode.maxChildren = maxChildren
        forkingMode.blockOnClose = blockOnClose
    }

    /// Creates the server with bind-time settings, a logger and a factory that builds each request's
    /// handler (see `TCPServer.init(_:configuration:mode:logger:bindAndActivate:makeHandler:)`).
    /// - Throws: `SocketServerError.invalidConfiguration` or `.handlerMismatch`; `SocketError` from
    ///   `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ForkingMode = ForkingMode(),
        logger: Logger? = nil,
        bindAndActivate: Bool = true,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        forkingMode = mode
        try super.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger,
            bindAndActivate: bindAndActivate, makeHandler: makeHandler
        )
        if configuration.timeout == nil { timeout = .seconds(300) }
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        forkingMode.maxChildren = maxChildren
        forkingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener`, an inherited bound socket (see
    /// `TCPServer.init(adopting:configuration:mode:logger:makeHandler:)`), with a factory that builds each
    /// request's handler.
    /// - Throws: `SocketServerError.invalidListener`, `.invalidConfiguration` or `.handlerMismatch`.
    public init(
        adopting listener: Socket,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ForkingMode = ForkingMode(),
        logger: Logger? = nil,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        forkingMode = mode
        try super.init(
            adopting: listener, configuration: configuration, mode: mode, logger: logger, makeHandler: makeHandler)
        if configuration.timeout == nil { timeout = .seconds(300) }
        forkingMode.maxChildren = maxChildren
        forkingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener` for instances of `handler`.
    /// - Throws: as `init(adopting:configuration:mode:logger:makeHandler:)`.
    public convenience init(
        adopting listener: Socket,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ForkingMode = ForkingMode(),
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
        mode: ForkingMode = ForkingMode(),
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

    /// Python's `max_children`: the most children alive at once; at the limit the server stops accepting
    /// until one exits. Default 40.
    open var maxChildren: Int {
        get { forkingMode.maxChildren }
        set { forkingMode.maxChildren = newValue }
    }

    /// Python's `block_on_close`: when true, `serverClose()` waits for every child to exit. Default true.
    open var blockOnClose: Bool {
        get { forkingMode.blockOnClose }
        set { forkingMode.blockOnClose = newValue }
    }

    /// Python's `active_children`: the process ids of children not yet reaped.
    public var activeChildren: Set<pid_t> { forkingMode.activeChildren }

    /// Python's `collect_children`: reaps exited children, or with `blocking` waits for all of them.
    public func collectChildren(blocking: Bool = false) {
        forkingMode.collectChildren(blocking: blocking)
    }
}

/// A UDP server handling each request in a child process: Python's `socketserver.ForkingUDPServer`.
///
/// A `UDPServer` whose `mode` is a `ForkingMode`, with `timeout` defaulting to 300 seconds as in the
/// reference (it only bounds `handleRequest()`'s wait). Python's attributes are properties forwarding to the
/// mode; set them before serving, or override them in a subclass (the initialiser reads the overrides).
open class ForkingUDPServer: UDPServer, @unchecked Sendable {
    /// The mode running this server's requests.
    public let forkingMode: ForkingMode

    /// Creates the server as `UDPServer` does, running requests in child processes.
    ///
    /// - Parameters:
    ///   - serverAddress: where to serve; port 0 picks one.
    ///   - handler: the request handler class.
    ///   - bindAndActivate: false leaves the socket created but unbound.
    ///   - mode: the forking mode; pass one to observe exit statuses. Defaults to the reference's settings
    ///     (`maxChildren` 40, `blockOnClose` true).
    /// - Throws: `SocketError` from `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        bindAndActivate: Bool = true,
        mode: ForkingMode = ForkingMode()
    ) throws {
        forkingMode = mode
        try super.init(serverAddress, handler: handler, bindAndActivate: bindAndActivate, mode: mode)
        timeout = .seconds(300)
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        forkingMode.maxChildren = maxChildren
        forkingMode.blockOnClose = blockOnClose
    }

    /// Creates the server with bind-time settings, a logger and a factory that builds each request's
    /// handler (see `TCPServer.init(_:configuration:mode:logger:bindAndActivate:makeHandler:)`).
    /// - Throws: `SocketServerError.invalidConfiguration` or `.handlerMismatch`; `SocketError` from
    ///   `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ForkingMode = ForkingMode(),
        logger: Logger? = nil,
        bindAndActivate: Bool = true,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        forkingMode = mode
        try super.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger,
            bindAndActivate: bindAndActivate, makeHandler: makeHandler
        )
        if configuration.timeout == nil { timeout = .seconds(300) }
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        forkingMode.maxChildren = maxChildren
        forkingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener`, an inherited bound socket (see
    /// `TCPServer.init(adopting:configuration:mode:logger:makeHandler:)`), with a factory that builds each
    /// request's handler.
    /// - Throws: `SocketServerError.invalidListener`, `.invalidConfiguration` or `.handlerMismatch`.
    public init(
        adopting listener: Socket,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ForkingMode = ForkingMode(),
        logger: Logger? = nil,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        forkingMode = mode
        try super.init(
            adopting: listener, configuration: configuration, mode: mode, logger: logger, makeHandler: makeHandler)
        if configuration.timeout == nil { timeout = .seconds(300) }
        forkingMode.maxChildren = maxChildren
        forkingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener` for instances of `handler`.
    /// - Throws: as `init(adopting:configuration:mode:logger:makeHandler:)`.
    public convenience init(
        adopting listener: Socket,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ForkingMode = ForkingMode(),
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
        mode: ForkingMode = ForkingMode(),
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

    /// Python's `max_children`: the most children alive at once; at the limit the server stops accepting
    /// until one exits. Default 40.
    open var maxChildren: Int {
        get { forkingMode.maxChildren }
        set { forkingMode.maxChildren = newValue }
    }

    /// Python's `block_on_close`: when true, `serverClose()` waits for every child to exit. Default true.
    open var blockOnClose: Bool {
        get { forkingMode.blockOnClose }
        set { forkingMode.blockOnClose = newValue }
    }

    /// Python's `active_children`: the process ids of children not yet reaped.
    public var activeChildren: Set<pid_t> { forkingMode.activeChildren }

    /// Python's `collect_children`: reaps exited children, or with `blocking` waits for all of them.
    public func collectChildren(blocking: Bool = false) {
        forkingMode.collectChildren(blocking: blocking)
    }
}

/// A Unix stream server handling each request in a child process: Python's `socketserver.ForkingUnixStreamServer`.
///
/// A `UnixStreamServer` whose `mode` is a `ForkingMode`, with `timeout` defaulting to 300 seconds as in the
/// reference (it only bounds `handleRequest()`'s wait). Python's attributes are properties forwarding to the
/// mode; set them before serving, or override them in a subclass (the initialiser reads the overrides).
open class ForkingUnixStreamServer: UnixStreamServer, @unchecked Sendable {
    /// The mode running this server's requests.
    public let forkingMode: ForkingMode

    /// Creates the server as `UnixStreamServer` does, running requests in child processes.
    ///
    /// - Parameters:
    ///   - serverAddress: where to serve; port 0 picks one.
    ///   - handler: the request handler class.
    ///   - bindAndActivate: false leaves the socket created but unbound.
    ///   - mode: the forking mode; pass one to observe exit statuses. Defaults to the reference's settings
    ///     (`maxChildren` 40, `blockOnClose` true).
    /// - Throws: `SocketError` from `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        bindAndActivate: Bool = true,
        mode: ForkingMode = ForkingMode()
    ) throws {
        forkingMode = mode
        try super.init(serverAddress, handler: handler, bindAndActivate: bindAndActivate, mode: mode)
        timeout = .seconds(300)
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        forkingMode.maxChildren = maxChildren
        forkingMode.blockOnClose = blockOnClose
    }

    /// Creates the server with bind-time settings, a logger and a factory that builds each request's
    /// handler (see `TCPServer.init(_:configuration:mode:logger:bindAndActivate:makeHandler:)`).
    /// - Throws: `SocketServerError.invalidConfiguration` or `.handlerMismatch`; `SocketError` from
    ///   `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ForkingMode = ForkingMode(),
        logger: Logger? = nil,
        bindAndActivate: Bool = true,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        forkingMode = mode
        try super.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger,
            bindAndActivate: bindAndActivate, makeHandler: makeHandler
        )
        if configuration.timeout == nil { timeout = .seconds(300) }
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        forkingMode.maxChildren = maxChildren
        forkingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener`, an inherited bound socket (see
    /// `TCPServer.init(adopting:configuration:mode:logger:makeHandler:)`), with a factory that builds each
    /// request's handler.
    /// - Throws: `SocketServerError.invalidListener`, `.invalidConfiguration` or `.handlerMismatch`.
    public init(
        adopting listener: Socket,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ForkingMode = ForkingMode(),
        logger: Logger? = nil,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        forkingMode = mode
        try super.init(
            adopting: listener, configuration: configuration, mode: mode, logger: logger, makeHandler: makeHandler)
        if configuration.timeout == nil { timeout = .seconds(300) }
        forkingMode.maxChildren = maxChildren
        forkingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener` for instances of `handler`.
    /// - Throws: as `init(adopting:configuration:mode:logger:makeHandler:)`.
    public convenience init(
        adopting listener: Socket,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ForkingMode = ForkingMode(),
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
        mode: ForkingMode = ForkingMode(),
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

    /// Python's `max_children`: the most children alive at once; at the limit the server stops accepting
    /// until one exits. Default 40.
    open var maxChildren: Int {
        get { forkingMode.maxChildren }
        set { forkingMode.maxChildren = newValue }
    }

    /// Python's `block_on_close`: when true, `serverClose()` waits for every child to exit. Default true.
    open var blockOnClose: Bool {
        get { forkingMode.blockOnClose }
        set { forkingMode.blockOnClose = newValue }
    }

    /// Python's `active_children`: the process ids of children not yet reaped.
    public var activeChildren: Set<pid_t> { forkingMode.activeChildren }

    /// Python's `collect_children`: reaps exited children, or with `blocking` waits for all of them.
    public func collectChildren(blocking: Bool = false) {
        forkingMode.collectChildren(blocking: blocking)
    }
}

/// A Unix datagram server handling each request in a child process: Python's `socketserver.ForkingUnixDatagramServer`.
///
/// A `UnixDatagramServer` whose `mode` is a `ForkingMode`, with `timeout` defaulting to 300 seconds as in the
/// reference (it only bounds `handleRequest()`'s wait). Python's attributes are properties forwarding to the
/// mode; set them before serving, or override them in a subclass (the initialiser reads the overrides).
open class ForkingUnixDatagramServer: UnixDatagramServer, @unchecked Sendable {
    /// The mode running this server's requests.
    public let forkingMode: ForkingMode

    /// Creates the server as `UnixDatagramServer` does, running requests in child processes.
    ///
    /// - Parameters:
    ///   - serverAddress: where to serve; port 0 picks one.
    ///   - handler: the request handler class.
    ///   - bindAndActivate: false leaves the socket created but unbound.
    ///   - mode: the forking mode; pass one to observe exit statuses. Defaults to the reference's settings
    ///     (`maxChildren` 40, `blockOnClose` true).
    /// - Throws: `SocketError` from `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        handler: BaseRequestHandler.Type,
        bindAndActivate: Bool = true,
        mode: ForkingMode = ForkingMode()
    ) throws {
        forkingMode = mode
        try super.init(serverAddress, handler: handler, bindAndActivate: bindAndActivate, mode: mode)
        timeout = .seconds(300)
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        forkingMode.maxChildren = maxChildren
        forkingMode.blockOnClose = blockOnClose
    }

    /// Creates the server with bind-time settings, a logger and a factory that builds each request's
    /// handler (see `TCPServer.init(_:configuration:mode:logger:bindAndActivate:makeHandler:)`).
    /// - Throws: `SocketServerError.invalidConfiguration` or `.handlerMismatch`; `SocketError` from
    ///   `socket`, `bind` or `listen`.
    public init(
        _ serverAddress: SocketAddress,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ForkingMode = ForkingMode(),
        logger: Logger? = nil,
        bindAndActivate: Bool = true,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        forkingMode = mode
        try super.init(
            serverAddress, configuration: configuration, mode: mode, logger: logger,
            bindAndActivate: bindAndActivate, makeHandler: makeHandler
        )
        if configuration.timeout == nil { timeout = .seconds(300) }
        // Picks up a subclass's overrides, Python's way of changing a class attribute.
        forkingMode.maxChildren = maxChildren
        forkingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener`, an inherited bound socket (see
    /// `TCPServer.init(adopting:configuration:mode:logger:makeHandler:)`), with a factory that builds each
    /// request's handler.
    /// - Throws: `SocketServerError.invalidListener`, `.invalidConfiguration` or `.handlerMismatch`.
    public init(
        adopting listener: Socket,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ForkingMode = ForkingMode(),
        logger: Logger? = nil,
        makeHandler: @escaping @Sendable (HandlerContext) throws -> BaseRequestHandler
    ) throws {
        forkingMode = mode
        try super.init(
            adopting: listener, configuration: configuration, mode: mode, logger: logger, makeHandler: makeHandler)
        if configuration.timeout == nil { timeout = .seconds(300) }
        forkingMode.maxChildren = maxChildren
        forkingMode.blockOnClose = blockOnClose
    }

    /// Creates the server around `listener` for instances of `handler`.
    /// - Throws: as `init(adopting:configuration:mode:logger:makeHandler:)`.
    public convenience init(
        adopting listener: Socket,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: ForkingMode = ForkingMode(),
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
        mode: ForkingMode = ForkingMode(),
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

    /// Python's `max_children`: the most children alive at once; at the limit the server stops accepting
    /// until one exits. Default 40.
    open var maxChildren: Int {
        get { forkingMode.maxChildren }
        set { forkingMode.maxChildren = newValue }
    }

    /// Python's `block_on_close`: when true, `serverClose()` waits for every child to exit. Default true.
    open var blockOnClose: Bool {
        get { forkingMode.blockOnClose }
        set { forkingMode.blockOnClose = newValue }
    }

    /// Python's `active_children`: the process ids of children not yet reaped.
    public var activeChildren: Set<pid_t> { forkingMode.activeChildren }

    /// Python's `collect_children`: reaps exited children, or with `blocking` waits for all of them.
    public func collectChildren(blocking: Bool = false) {
        forkingMode.collectChildren(blocking: blocking)
    }
}
