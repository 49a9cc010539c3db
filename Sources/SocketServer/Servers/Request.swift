/// What a server hands to `verifyRequest`, `processRequest` and its request handler.
///
/// Python passes a socket (stream servers) or a `(data, socket)` pair (datagram servers); a custom
/// `getRequest()` may pass anything. The three cases keep those apart without a dynamic cast.
public enum Request: Sendable {
    /// An accepted connection (`TCPServer`, `UnixStreamServer`).
    case stream(Socket)
    /// One received datagram and the server socket to answer on (`UDPServer`, `UnixDatagramServer`).
    case datagram(Datagram)
    /// Whatever a subclass's `getRequest()` produced, for servers whose requests are not sockets.
    case custom(any Sendable)

    /// Whether this is a connection.
    package var isStream: Bool {
        if case .stream = self { return true }
        return false
    }

    /// The connection of a stream request, or the server socket of a datagram request; nil for custom ones.
    public var socket: Socket? {
        switch self {
        case .stream(let socket): socket
        case .datagram(let datagram): datagram.socket
        case .custom: nil
        }
    }
}

/// A received datagram: its bytes and the server socket it arrived on (Python's `(data, socket)` pair).
public struct Datagram: Sendable {
    /// The payload, cut to the server's `maxPacketSize`.
    public let packet: [UInt8]
    /// The server's socket; replies go out through it. Handlers must not close it.
    public let socket: Socket

    /// Pairs a payload with the socket it arrived on.
    public init(packet: [UInt8], socket: Socket) {
        self.packet = packet
        self.socket = socket
    }
}
