/// A datagram server: UDP over IPv4 or IPv6 (Python's `socketserver.UDPServer`).
///
/// Each datagram is one request, `Request.datagram`, cut to `maxPacketSize` bytes. Nothing listens and
/// nothing is closed per request: the server socket is shared by every request.
open class UDPServer: TCPServer, @unchecked Sendable {
    /// Datagram.
    open override class var socketType: SocketType { .datagram }

    /// The largest datagram handed to a handler; longer ones are cut to exactly this size. Default 8192.
    open var maxPacketSize = 8192

    /// Does nothing: datagram sockets do not listen.
    open override func serverActivate() throws {}

    /// Receives one datagram and its sender.
    open override func getRequest() throws -> (Request, SocketAddress) {
        let (packet, clientAddress) = try socket.receiveFrom(maxLength: maxPacketSize)
        return (.datagram(Datagram(packet: packet, socket: socket)), clientAddress)
    }

    /// Calls `closeRequest`; there is no connection to half-close.
    open override func shutdownRequest(_ request: Request) {
        closeRequest(request)
    }

    /// Does nothing: the server socket is shared.
    open override func closeRequest(_ request: Request) {}
}
