/// Why a connection on a PROXY-protocol listener was closed before its request started.
///
/// Thrown to `BaseServer.handleError` (which logs it at `.info`: it is what the peer did, never the
/// server's fault) and nowhere else; the connection is then closed. No case carries client bytes beyond a
/// short description.
public enum ProxyProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The peer is not in `ProxyProtocolConfiguration.trustedProxies`: its header, if any, is not read.
    case untrustedPeer(SocketAddress)
    /// The first bytes are neither a v1 (`PROXY `) nor a v2 signature: a client that did not come through the
    /// proxy, or a proxy configured without the PROXY protocol.
    case missingHeader
    /// A header of a version this listener does not accept (a v1 line on a `.v2` listener, or the reverse).
    case versionNotAccepted(ProxyProtocolVersion)
    /// The header breaks the format; the text says where.
    case malformedHeader(String)
    /// The header is longer than allowed: 107 bytes for v1, `maxHeaderLength` for v2.
    case headerTooLong(limit: Int)
    /// The peer closed the connection before the header was complete.
    case truncatedHeader
    /// The header was not complete within `headerTimeout`.
    case headerTimedOut

    /// One line saying what went wrong, for logs.
    public var description: String {
        switch self {
        case .untrustedPeer(let address): "PROXY protocol: \(address) is not a trusted proxy"
        case .missingHeader: "PROXY protocol: no PROXY header"
        case .versionNotAccepted(let version): "PROXY protocol: \(version) header not accepted here"
        case .malformedHeader(let reason): "PROXY protocol: malformed header (\(reason))"
        case .headerTooLong(let limit): "PROXY protocol: header longer than \(limit) bytes"
        case .truncatedHeader: "PROXY protocol: connection closed inside the header"
        case .headerTimedOut: "PROXY protocol: header not received in time"
        }
    }
}
