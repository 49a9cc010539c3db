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

    /// Receives one datagram and its sender, on the serving thread, without ever waiting: the socket stays
    /// blocking (so replies sent on it from handler threads wait for buffer space instead of failing with
    /// `EAGAIN`), and this receive passes `MSG_DONTWAIT`.
    /// - Throws: `SocketError`, which the serving loop swallows; `EAGAIN` at once when no datagram is queued
    ///   after all (a spurious readiness, for example a datagram the kernel dropped for a bad checksum).
    open override func getRequest() throws -> (Request, SocketAddress) {
        let (packet, clientAddress) = try socket.receiveFrom(maxLength: maxPacketSize, nonBlocking: true)
        return (.datagram(Datagram(packet: packet, socket: socket)), clientAddress)
    }

    /// Calls `closeRequest`; there is no connection to half-close.
    open override func shutdownRequest(_ request: Request) {
        closeRequest(request)
    }

    /// Does nothing: the server socket is shared.
    open override func closeRequest(_ request: Request) {}
}
