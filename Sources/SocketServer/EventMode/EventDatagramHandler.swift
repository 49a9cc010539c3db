import Glibc

/// A non-blocking handler for the datagrams of a `UDPServer` or `UnixDatagramServer` in `EventMode`.
///
/// One instance serves every datagram of the server, on the server's own loop (the thread running
/// `serveForever`), one at a time. Reply with `EventDatagram.reply`, which never blocks. An error thrown
/// goes to the server's `handleError`; the server keeps serving.
open class EventDatagramHandler {
    /// Creates the handler; the mode creates one per server.
    public required init() {}

    /// A datagram arrived. Does nothing here.
    open func datagramReceived(_ datagram: EventDatagram) throws {}
}

/// One received datagram, its sender, and the way to answer it.
public struct EventDatagram: Sendable {
    /// The payload, cut to the server's `maxPacketSize`.
    public let packet: [UInt8]
    /// Who sent it; replies go there.
    public let clientAddress: SocketAddress
    /// The server that received it.
    public let server: BaseServer
    private let socket: Socket
    /// Where replies made on the serving thread during a batch wait for the batch's one `sendmmsg`.
    private let replies: DatagramReplyQueue?

    init(packet: [UInt8], clientAddress: SocketAddress, server: BaseServer, socket: Socket, replies: DatagramReplyQueue?) {
        self.packet = packet
        self.clientAddress = clientAddress
        self.server = server
        self.socket = socket
        self.replies = replies
    }

    /// Sends `bytes` to the sender as one datagram, without blocking.
    ///
    /// Called from the handler (on the serving thread), the reply is copied into the server's reply queue
    /// and sent with the other replies of the same batch of received datagrams in one `sendmmsg(2)` once
    /// the batch is handled; what the socket cannot take then waits in the queue until it can. Called from
    /// another thread, it is sent at once with one `sendto(2)`.
    /// - Returns: false when the reply was dropped (as the network may): the send buffer is full and (on
    ///   the serving thread) so is the reply queue.
    /// - Throws: `SocketError` when the system refuses the datagram (for example an unnamed Unix client);
    ///   a queued reply the system refuses later is dropped and logged at `.debug`.
    @discardableResult
    public func reply(_ bytes: UnsafeRawBufferPointer) throws -> Bool {
        // An unnamed Unix client (no path to answer to) is refused at once, so the handler hears of it.
        if let replies, replies.isCollectingOnThisThread, clientAddress.length > 2 {
            return replies.append(bytes, to: clientAddress, socket: socket)
        }
        return try socket.sendWithoutWaiting(bytes, to: clientAddress)
    }

    /// Sends `bytes` to the sender as one datagram, without blocking; false when dropped.
    @discardableResult
    public func reply(_ bytes: [UInt8]) throws -> Bool {
        try bytes.withUnsafeBytes { try reply($0) }
    }

    /// Sends `text` as UTF-8 to the sender as one datagram, without blocking; false when dropped.
    @discardableResult
    public func reply(_ text: String) throws -> Bool {
        var text = text
        return try text.withUTF8 { try reply(UnsafeRawBufferPointer($0)) }
    }
}

extension Socket {
    /// Sends `bytes` to `address` as one datagram with `MSG_DONTWAIT`: one `sendto(2)` (more only after
    /// `EINTR`), never waiting, from any thread.
    /// - Returns: false when the send buffer is full and the datagram was dropped (as the network may).
    /// - Throws: `SocketError` when the system refuses the datagram (for example an unnamed Unix client).
    func sendWithoutWaiting(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress) throws -> Bool {
        let descriptor = fileDescriptor
        guard descriptor >= 0 else { throw SocketError(operation: "sendto", code: EBADF) }
        while true {
            let sent = address.withSockAddr { address, length in
                sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT), address, length)
            }
            if sent >= 0 { return true }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK || code == ENOBUFS { return false }
            throw SocketError(operation: "sendto", code: code)
        }
    }
}
