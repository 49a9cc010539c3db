/// A handler for datagram servers: the received packet, an `rfile` over it, and a `wfile` whose bytes go back
/// to the client as one datagram.
///
/// Python's `socketserver.DatagramRequestHandler`. `finish()` sends what `wfile` holds to `clientAddress`,
/// even when that is nothing (an empty datagram), as Python does; override `finish()` to reply selectively.
open class DatagramRequestHandler: BaseRequestHandler {
    /// The received bytes, cut to the server's `maxPacketSize`.
    public let packet: [UInt8]
    /// The server socket the packet arrived on; replies go out through it. Nil when the request is not a
    /// datagram (then `setup()` throws).
    public let socket: Socket?

    /// Reads the packet.
    public private(set) lazy var rfile = RequestReader(bytes: packet)
    /// Collects the reply.
    public private(set) lazy var wfile = RequestWriter()

    /// Takes the packet and socket out of a `.datagram` request.
    public required init(request: Request, clientAddress: SocketAddress, server: BaseServer) {
        if case .datagram(let datagram) = request {
            packet = datagram.packet
            socket = datagram.socket
        } else {
            packet = []
            socket = nil
        }
        super.init(request: request, clientAddress: clientAddress, server: server)
    }

    /// Checks that the request is a datagram.
    open override func setup() throws {
        guard case .datagram = request else {
            throw SocketServerError.unexpectedRequest("DatagramRequestHandler needs a datagram request")
        }
    }

    /// Sends `wfile`'s bytes to the client.
    /// - Throws: `SocketError` from `sendto`, for example for an unnamed Unix client that cannot be answered.
    open override func finish() throws {
        guard let socket else { return }
        try socket.send(wfile.bytes, to: clientAddress)
    }
}
