import Glibc

/// The settings a socket server reads when it binds, as one `Sendable` value (Hummingbird's style).
///
/// Pass it to a server initialiser (`TCPServer(_:handler:configuration:)`); the server checks it there and
/// throws `SocketServerError.invalidConfiguration` for a value out of range, never clamping it silently.
/// The Python-named attributes (`allowReuseAddress`, `requestQueueSize`, ...) stay, and read and write the
/// same values: `server.configuration` reflects them.
public struct ServerConfiguration: Sendable, Hashable {
    /// Sets `SO_REUSEADDR` before binding (Python's `allow_reuse_address`). Default false.
    public var allowReuseAddress: Bool
    /// Sets `SO_REUSEPORT` before binding, on IPv4 and IPv6 sockets only (Python's `allow_reuse_port`).
    /// Default false.
    public var allowReusePort: Bool
    /// The listen backlog (Python's `request_queue_size`), 0 ... `Int32.max`; the kernel caps it at
    /// `net.core.somaxconn`. Default `SOMAXCONN` (4096), as Python 3.15.
    public var requestQueueSize: Int
    /// For an IPv6 address, accept IPv4 clients too (`IPV6_V6ONLY` off). Default false.
    public var dualStack: Bool
    /// How long `handleRequest()` waits before calling `handleTimeout()` (Python's `timeout`); nil, the
    /// default, waits for ever. Must be positive.
    public var timeout: Duration?
    /// A bound on each request's whole duration in the blocking modes (synchronous, threading, forking,
    /// pool), counted from the moment its handler starts (`StreamRequestHandler.setup()`): past it every
    /// receive and send of the connection fails (a `SocketError` with `isTimeout`, "recv past the request
    /// deadline"), the error goes to `handleError` (logged at `.info`, as the client's doing) and the
    /// connection closes. It bounds what a slow client (a slowloris sending a byte just within every read
    /// timeout) can cost: the serving thread (synchronous), a thread, a child or a pool worker for at most
    /// this long, so a request queued in a pool waits at most about
    /// `(queueCapacity + workers) / workers` times this long (see `Socket.deadline`). Time spent computing
    /// between reads is not interrupted, only the next receive or send fails. nil, the default, sets no
    /// bound. Must be positive. Stream servers only; event and async modes refuse it (they use
    /// `idleTimeout` and a handler's `timeout`, and a slow client costs them only its buffers).
    public var requestTimeout: Duration?
    /// The largest datagram a datagram server hands to a handler, 1 ... 16 MiB; longer ones are cut to
    /// exactly this size (Python's `max_packet_size`). Default 8192. Stream servers ignore it.
    public var maxPacketSize: Int
    /// The PROXY protocol (v1/v2) for a stream server behind a load balancer; nil, the default, reads none.
    /// Datagram servers refuse it. See `ProxyProtocolConfiguration`.
    public var proxyProtocol: ProxyProtocolConfiguration?

    /// The largest `maxPacketSize` accepted: beyond any datagram Linux delivers, and a bounded buffer.
    public static let maxPacketSizeLimit = 16 << 20

    /// The reference's defaults, with any of them changed.
    public init(
        allowReuseAddress: Bool = false,
        allowReusePort: Bool = false,
        requestQueueSize: Int = Int(SOMAXCONN),
        dualStack: Bool = false,
        timeout: Duration? = nil,
        maxPacketSize: Int = 8192,
        requestTimeout: Duration? = nil,
        proxyProtocol: ProxyProtocolConfiguration? = nil
    ) {
        self.allowReuseAddress = allowReuseAddress
        self.allowReusePort = allowReusePort
        self.requestQueueSize = requestQueueSize
        self.dualStack = dualStack
        self.timeout = timeout
        self.maxPacketSize = maxPacketSize
        self.requestTimeout = requestTimeout
        self.proxyProtocol = proxyProtocol
    }

    /// Checks every value; called by the server initialisers.
    /// - Throws: `SocketServerError.invalidConfiguration` naming the first value out of range.
    public func validate() throws {
        guard (0...Int(Int32.max)).contains(requestQueueSize) else {
            throw SocketServerError.invalidConfiguration("requestQueueSize \(requestQueueSize) is not in 0...\(Int32.max)")
        }
        if let timeout, timeout <= .zero {
            throw SocketServerError.invalidConfiguration("timeout \(timeout) is not positive")
        }
        if let requestTimeout, requestTimeout <= .zero {
            throw SocketServerError.invalidConfiguration("requestTimeout \(requestTimeout) is not positive")
        }
        guard (1...Self.maxPacketSizeLimit).contains(maxPacketSize) else {
            throw SocketServerError.invalidConfiguration(
                "maxPacketSize \(maxPacketSize) is not in 1...\(Self.maxPacketSizeLimit)")
        }
        try proxyProtocol?.validate()
    }
}
