/// What an async datagram handler (and its factory) receives for each datagram: the payload, its sender,
/// the server, and the way to answer.
///
/// A small value; the handler's task may keep it for as long as it runs. Replies go out through the
/// server's socket without waiting.
public struct AsyncDatagramContext: Sendable {
    /// The payload, cut to the server's `maxPacketSize`.
    public let packet: [UInt8]
    /// Who sent it; replies go there.
    public let clientAddress: SocketAddress
    /// The datagram as the server received it (for `shutdownRequest`).
    let request: Request
    let unretainedServer: UnretainedServer
    /// The loop the handler's task runs on.
    let loop: EventLoop

    init(datagram: Datagram, clientAddress: SocketAddress, server: UnretainedServer, loop: EventLoop) {
        self.packet = datagram.packet
        self.clientAddress = clientAddress
        self.request = .datagram(datagram)
        self.unretainedServer = server
        self.loop = loop
    }

    /// The server that received the datagram. Do not keep it beyond the handler's life: the server's
    /// `deinit` waits for its loops.
    public var server: BaseServer { unretainedServer.server }

    /// Sends `bytes` to the sender as one datagram, without waiting: one `sendto(2)` with `MSG_DONTWAIT`.
    /// From the handler's task (or any thread).
    /// - Returns: false when the socket's send buffer is full and the reply was dropped (as the network may).
    /// - Throws: `SocketError` when the system refuses the datagram (for example an unnamed Unix client, or
    ///   the server's socket is closed).
    @discardableResult
    public func reply(_ bytes: UnsafeRawBufferPointer) throws -> Bool {
        guard let socket = request.socket else { return false }
        return try socket.sendWithoutWaiting(bytes, to: clientAddress)
    }

    /// Sends `bytes` to the sender as one datagram, without waiting; false when dropped.
    @discardableResult
    public func reply(_ bytes: [UInt8]) throws -> Bool {
        try bytes.withUnsafeBytes { try reply($0) }
    }

    /// Sends `text` as UTF-8 to the sender as one datagram, without waiting; false when dropped.
    @discardableResult
    public func reply(_ text: String) throws -> Bool {
        var text = text
        return try text.withUTF8 { try reply(UnsafeRawBufferPointer($0)) }
    }
}
