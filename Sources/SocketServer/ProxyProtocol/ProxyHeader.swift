/// A PROXY protocol version (HAProxy's `proxy-protocol.txt`).
public enum ProxyProtocolVersion: Sendable, Hashable, CustomStringConvertible {
    /// The text header, `PROXY TCP4 src dst sport dport\r\n`, at most 107 bytes (HAProxy's `send-proxy`).
    case v1
    /// The binary header: a 16-byte preamble, addresses and TLVs (HAProxy's `send-proxy-v2`).
    case v2

    /// `"v1"` or `"v2"`.
    public var description: String { self == .v1 ? "v1" : "v2" }
}

/// One parsed PROXY header: who the proxy says the client is.
///
/// Internal: handlers see its effect as their `clientAddress`.
struct ProxyHeader: Sendable, Hashable {
    /// What the proxy asks of the receiver.
    enum Command: Sendable, Hashable {
        /// Relayed for a client: `source` is the client, `destination` the address it connected to (nil for a
        /// v1 `UNKNOWN` or a v2 `AF_UNSPEC` header, whose peer address stands).
        case proxy
        /// The proxy's own connection (a health check): the peer address stands.
        case local
    }

    /// One v2 type-length-value field (ALPN, authority, unique id, TLS details, ...), kept as sent.
    struct Field: Sendable, Hashable {
        /// The type byte (`PP2_TYPE_*`).
        var type: UInt8
        /// The value bytes.
        var value: [UInt8]
    }

    var version: ProxyProtocolVersion
    var command: Command
    /// The original client, when the header names one.
    var source: SocketAddress?
    /// The address the client connected to, when the header names one.
    var destination: SocketAddress?
    /// The v2 TLVs, in order; empty for v1.
    var fields: [Field] = []

    /// The address a server should treat as the client's: `source` for a PROXY header that names one, else
    /// the peer's own.
    func clientAddress(peer: SocketAddress) -> SocketAddress {
        if command == .proxy, let source { return source }
        return peer
    }
}
