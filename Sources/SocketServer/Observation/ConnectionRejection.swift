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
}
