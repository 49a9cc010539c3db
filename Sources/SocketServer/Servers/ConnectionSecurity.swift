/// The seam a security layer (the `SocketServerTLS` product) plugs into a stream server: a handshake on the
/// thread or loop that owns each connection, then a byte transform between the socket and the handler.
///
/// Package-internal: users set it up through the layer's own API (`TCPServer.useTLS(_:)`). A server without
/// one (`BaseServer.connectionSecurity` nil) takes none of these paths: one optional check per accepted
/// connection, none per message.
///
/// With a security layer, `verifyRequest` runs after the handshake, on the thread or loop that runs the
/// request (so it can see what the handshake established), instead of on the serving thread.
package protocol ConnectionSecurity: AnyObject, Sendable {
    /// Blocking modes: runs the handshake on `socket` (blocking; bounded by the layer's own timeout) on the
    /// thread that runs the request, then installs the socket's `transport`, through which the handler's
    /// `rfile` and `wfile` read and write plaintext.
    /// - Throws: what ended the handshake (a timeout, a protocol error, a reset); the connection is over.
    func secure(_ socket: Socket, clientAddress: SocketAddress, server: BaseServer) throws

    /// Event and async mode: the transform for one new non-blocking connection, made on the loop that will
    /// own it. The transform also becomes the socket's `transport` (for what the handshake established).
    /// - Throws: when no session can be made (out of memory); the connection is then closed unserved.
    func makeEventTransport(for socket: Socket, clientAddress: SocketAddress) throws -> any EventStreamTransport
}

/// What a security layer does on a connection: lets `Socket.receive(into:)` and `Socket.send(_:)` go
/// through it (blocking modes), ends it before the socket is half-closed, and carries what its handshake
/// established.
package protocol SocketTransport: AnyObject, Sendable {
    /// Receives up to `buffer.count` plaintext bytes; 0 at end of input.
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Sends some plaintext bytes (all of them for TLS) and returns how many.
    func send(_ bytes: UnsafeRawBufferPointer) throws -> Int
    /// Ends the session in the blocking modes (a TLS close_notify, best effort); called by
    /// `TCPServer.shutdownRequest` before the half-close.
    func shutdown()
}

/// The event-mode half of a security layer: a byte transform driven by one connection's loop, with no I/O
/// of its own. The connection feeds it what `recv` returned and sends what it produces.
///
/// Called only on the connection's loop. The connection takes produced ciphertext with
/// `takeOutput(into:)` after every call that may produce some.
package protocol EventStreamTransport: SocketTransport {
    /// How long the handshake may take before the connection is closed.
    var handshakeTimeout: Duration { get }
    /// Whether the handshake has completed.
    var isEstablished: Bool { get }
    /// The error a connection whose handshake outlived `handshakeTimeout` reports.
    var handshakeTimedOut: any Error { get }
    /// Whether received bytes wait in the transform (undecoded, or decoded and not yet taken): a paused
    /// connection that resumes must decode them without waiting for the peer.
    var hasPendingInput: Bool { get }
    /// Takes bytes received from the peer.
    /// - Throws: when the transform cannot take them (out of memory).
    func feed(_ received: UnsafeRawBufferPointer) throws
    /// Advances the handshake; true once it is complete.
    /// - Throws: a handshake failure (the reason is in the error).
    func advanceHandshake() throws -> Bool
    /// Decodes received bytes into `buffer`: a count above 0, 0 at the peer's orderly end of input
    /// (close_notify), nil when it needs more received bytes.
    /// - Throws: a protocol error.
    func decode(into buffer: UnsafeMutableRawBufferPointer) throws -> Int?
    /// Encodes `plaintext` for sending (one TLS write of the whole batch).
    /// - Throws: when the session cannot write any more.
    func encode(_ plaintext: UnsafeRawBufferPointer) throws
    /// Produces the end of the session (a close_notify), once.
    func close()
    /// Bytes produced for the peer and not yet taken.
    var pendingOutputCount: Int { get }
    /// Moves up to `buffer.count` produced bytes into `buffer`; returns how many.
    func takeOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int
}

/// An error a security layer reports for something the peer did (a failed handshake, a protocol error, a
/// handshake that timed out): `handleError` logs it at `.info`, never `.error`.
package protocol PeerCausedError: Error {}
