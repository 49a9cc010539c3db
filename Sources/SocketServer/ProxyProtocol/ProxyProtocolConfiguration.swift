/// Turns on the PROXY protocol (HAProxy's, v1 and v2) for a stream server behind a load balancer.
///
/// With it, every connection must begin with a PROXY header, sent by a peer in `trustedProxies`; the header
/// is read under `headerTimeout`, before `verifyRequest` and before the request handler, and never a byte
/// beyond it. `clientAddress` (the server's hooks and the handler's) is then the original client's; a
/// `LOCAL` (v2) or `UNKNOWN` (v1) header, which a proxy sends for its own health checks, keeps the peer's.
/// A missing, malformed, oversized, late or untrusted header closes that connection, reported to
/// `handleError` as a `ProxyProtocolError` (logged at `.info`).
///
/// ```swift
/// let proxy = try ProxyProtocolConfiguration(.auto, trustedProxies: [TrustedProxy("10.0.0.0/8")])
/// let server = try TCPServer(.loopback(port: 8000), handler: EchoHandler.self,
///                            configuration: ServerConfiguration(proxyProtocol: proxy))
/// ```
///
/// Where the header is read: on the thread (or child) that runs the request in the blocking modes, so a
/// slow proxy never holds up the accept loop (except in synchronous mode, whose one thread does both); on
/// the connection's loop in event and async modes. `verifyRequest` then runs there too, with the original
/// client's address, instead of on the serving thread.
public struct ProxyProtocolConfiguration: Sendable, Hashable {
    /// Which header versions a listener takes.
    public enum Versions: Sendable, Hashable {
        /// Only the v1 text header (`send-proxy`, `curl --haproxy-protocol`).
        case v1
        /// Only the v2 binary header (`send-proxy-v2`, cloud load balancers).
        case v2
        /// Either, told apart by their first bytes.
        case auto
    }

    /// The versions accepted.
    public var versions: Versions
    /// The peers whose headers are believed; a connection from anyone else is closed unread.
    public var trustedProxies: [TrustedProxy]
    /// How long a connection may take to send its whole header. Default 3 s.
    public var headerTimeout: Duration
    /// The longest v2 header accepted, its 16-byte preamble included: 16 ... 65551 (the format's limit, the
    /// default). Lower it to bound what one connection's header may hold in memory. v1 headers are
    /// always at most 107 bytes.
    public var maxHeaderLength: Int

    /// The format's own limit for `maxHeaderLength`, 16 + 65535.
    public static let maxHeaderLengthLimit = ProxyHeaderParser.v2MaxLength

    /// A configuration for `versions` from `trustedProxies`.
    /// - Throws: `SocketServerError.invalidConfiguration` for an empty `trustedProxies`, a non-positive
    ///   `headerTimeout` or a `maxHeaderLength` outside 16 ... 65551 (see `validate()`).
    public init(
        _ versions: Versions = .auto,
        trustedProxies: [TrustedProxy],
        headerTimeout: Duration = .seconds(3),
        maxHeaderLength: Int = ProxyProtocolConfiguration.maxHeaderLengthLimit
    ) throws {
        self.versions = versions
        self.trustedProxies = trustedProxies
        self.headerTimeout = headerTimeout
        self.maxHeaderLength = maxHeaderLength
        try validate()
    }

    /// Checks every value; servers call it when they are created.
    /// - Throws: `SocketServerError.invalidConfiguration` naming the first value out of range.
    public func validate() throws {
        guard !trustedProxies.isEmpty else {
            throw SocketServerError.invalidConfiguration("proxyProtocol needs at least one trusted proxy")
        }
        guard headerTimeout > .zero else {
            throw SocketServerError.invalidConfiguration("proxyProtocol headerTimeout \(headerTimeout) is not positive")
        }
        let range = ProxyHeaderParser.v2PreambleLength...Self.maxHeaderLengthLimit
        guard range.contains(maxHeaderLength) else {
            throw SocketServerError.invalidConfiguration(
                "proxyProtocol maxHeaderLength \(maxHeaderLength) is not in \(range.lowerBound)...\(range.upperBound)")
        }
    }

    /// Whether `peer` may send a header.
    func trusts(_ peer: SocketAddress) -> Bool {
        trustedProxies.contains { $0.contains(peer) }
    }
}
