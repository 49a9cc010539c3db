/// Why a server did not serve a connection (`ServerObserver.connectionRejected`).
public enum ConnectionRejection: String, Sendable, Hashable, CaseIterable {
    /// The mode reached its capacity (event mode's `maxConnections`, a full pool queue, `maxChildren`) and
    /// the server stopped accepting; the connections that arrive meanwhile wait in the listen backlog.
    /// Reported once per pause.
    case maxConnections
    /// `verifyRequest` returned false or threw.
    case verifyRequest
    /// `accept` failed for want of descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`); the
    /// server pauses accepting for 100 ms.
    case descriptorExhaustion
    /// Behind a PROXY-protocol listener: the peer is not a trusted proxy, or its header was malformed,
    /// oversized, incomplete at the header timeout, or never came (the connection closed first). Reported
    /// where the header is read: the thread that runs the request (blocking modes, after
    /// `connectionAccepted`), or the connection's loop (event and async mode, where the connection is
    /// accepted only once its header is read, so no `connectionAccepted` precedes it).
    case proxyHeader
    /// A secured (TLS) connection's handshake failed or timed out. Reported where the handshake runs: the
    /// thread that runs the request (blocking modes, after `connectionAccepted`), or the connection's loop
    /// (event and async mode, after `connectionAccepted`; its `connectionClosed` follows).
    case tlsHandshake
}
