import Glibc
import Logging

extension TCPServer {
    /// Checks that `listener` can be this class's socket and prepares its blocking mode; returns its bound
    /// address. See `init(adopting:configuration:mode:logger:makeHandler:)` for the rules.
    static func checkAdoptable(_ listener: Socket) throws -> SocketAddress {
        let fd = listener.fileDescriptor
        guard fd >= 0 else { throw SocketServerError.invalidListener("the socket is closed") }
        let kind = socketType == .stream ? "stream" : "datagram"
        guard listener.type == socketType, try listener.option(level: SOL_SOCKET, name: SO_TYPE) == socketType.rawValue
        else {
            throw SocketServerError.invalidListener(
                "descriptor \(fd) is not a \(kind) socket, which \(Self.self) needs")
        }
        let family = try Socket.kernelFamily(of: fd)
        guard family == listener.family else {
            throw SocketServerError.invalidListener(
                "descriptor \(fd) is an \(family) socket, not \(listener.family) as its Socket says")
        }
        guard requiredFamilies.contains(family) else {
            let allowed = requiredFamilies.map(\.description).sorted().joined(separator: " or ")
            throw SocketServerError.invalidListener("descriptor \(fd) is an \(family) socket; \(Self.self) needs \(allowed)")
        }
        let address = try listener.localAddress
        let unbound = family == .unix ? (address.path ?? "").isEmpty : address.port == 0
        guard !unbound else { throw SocketServerError.invalidListener("descriptor \(fd) is not bound to an address") }
        if socketType == .stream {
            guard try listener.option(level: SOL_SOCKET, name: SO_ACCEPTCONN) == 1 else {
                throw SocketServerError.invalidListener("descriptor \(fd) (\(address)) is bound but does not listen")
            }
            let nonBlocking = try isNonBlockingInKernel(fd)
            if !listener.isNonBlocking || !nonBlocking { try listener.setNonBlocking(true) }
        } else {
            let nonBlocking = try isNonBlockingInKernel(fd)
            if listener.isNonBlocking || nonBlocking { try listener.setNonBlocking(false) }
        }
        return address
    }

    private static func isNonBlockingInKernel(_ fd: Int32) throws -> Bool {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { throw SocketError(operation: "fcntl", code: errno) }
        return flags & O_NONBLOCK != 0
    }

    /// Creates a server around `listener` whose handlers are instances of `handler`; see
    /// `init(adopting:configuration:mode:logger:makeHandler:)`.
    /// - Throws: `SocketServerError.invalidListener`, `.invalidConfiguration` or `.handlerMismatch`.
    public convenience init(
        adopting listener: Socket,
        handler: BaseRequestHandler.Type,
        configuration: ServerConfiguration = ServerConfiguration(),
        mode: (any ConcurrencyMode)? = nil,
        logger: Logger? = nil
    ) throws {
        try Self.checkHandler(handler, mode: mode)
        try self.init(
            adopting: listener, configuration: configuration, mode: mode, logger: logger,
            makeHandler: HandlerSource.makeHandler(for: handler))
        handlerSource = .type(handler)
    }

    /// Creates an event-mode stream server around `listener` whose connections are served by instances of
    /// `eventHandler`; see `init(adopting:configuration:mode:logger:makeHandler:)`.
    /// - Throws: `SocketServerError.invalidListener`, `.invalidConfiguration` or `.handlerMismatch`.
    public convenience init(
        adopting listener: Socket,
        eventHandler: EventStreamHandler.Type,
        configuration: EventMode.Configuration = EventMode.Configuration(),
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) throws {
        try self.init(
            adopting: listener, configuration: serverConfiguration,
            mode: EventMode(handler: eventHandler, configuration: configuration), logger: logger, makeHandler: nil)
    }

    /// Creates an event-mode datagram server around `listener` whose datagrams are answered by one
    /// `eventHandler`; see `init(adopting:configuration:mode:logger:makeHandler:)`.
    /// - Throws: `SocketServerError.invalidListener`, `.invalidConfiguration` or `.handlerMismatch`.
    public convenience init(
        adopting listener: Socket,
        eventHandler: EventDatagramHandler.Type,
        configuration: EventMode.Configuration = EventMode.Configuration(),
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) throws {
        try self.init(
            adopting: listener, configuration: serverConfiguration,
            mode: EventMode(datagramHandler: eventHandler, configuration: configuration), logger: logger,
            makeHandler: nil)
    }

    /// Creates a stream server around `listener` whose connections are served by instances of
    /// `asyncHandler` on the event loops; see `init(adopting:configuration:mode:logger:makeHandler:)`.
    /// - Throws: `SocketServerError.invalidListener`, `.invalidConfiguration` or `.handlerMismatch`.
    public convenience init(
        adopting listener: Socket,
        asyncHandler: AsyncStreamRequestHandler.Type,
        configuration: EventMode.Configuration = EventMode.Configuration(),
        serverConfiguration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) throws {
        try self.init(
            adopting: listener, configuration: serverConfiguration,
            mode: EventMode(configuration: configuration, makeAsyncHandler: { context in asyncHandler.init(context) }),
            logger: logger, makeHandler: nil)
    }
}
