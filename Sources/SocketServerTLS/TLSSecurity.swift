import SocketServer

/// Plugs a `TLSContext` into a server's connection-security seam: a blocking handshake for the blocking
/// modes, a memory-BIO session for the event loops.
final class TLSSecurity: ConnectionSecurity {
    let context: TLSContext

    init(_ context: TLSContext) {
        self.context = context
    }

    func secure(_ socket: Socket, clientAddress: SocketAddress, server: BaseServer) throws {
        let session = try TLSSession(
            socket: socket.fileDescriptor, contexts: context.contexts,
            handshakeTimeout: context.configuration.handshakeTimeout)
        try session.handshake(on: socket)
        socket.transport = session
    }

    func makeEventTransport(for socket: Socket, clientAddress: SocketAddress) throws -> any EventStreamTransport {
        let session = try TLSSession(
            memoryFor: socket.fileDescriptor, contexts: context.contexts,
            handshakeTimeout: context.configuration.handshakeTimeout)
        socket.transport = session
        return session
    }
}
