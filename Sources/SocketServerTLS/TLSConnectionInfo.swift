/// What a connection's TLS handshake established: the version, the cipher, the ALPN choice, the server name
/// the client asked for, and the client's certificate. Seen by `verifyRequest` (through
/// `Request.tls`) and by handlers (`Socket.tls`, `EventConnection.tls`, `AsyncHandlerContext.tls`).
public struct TLSConnectionInfo: Sendable, Hashable {
    /// The outcome of verifying the client's certificate chain against the trusted CAs.
    public enum PeerVerification: Sendable, Hashable {
        /// The client sent no certificate (or none was asked for).
        case noCertificate
        /// The chain verified.
        case verified
        /// The chain did not verify; OpenSSL's reason ("certificate has expired", ...).
        case failed(String)
    }

    /// "TLSv1.3" or "TLSv1.2".
    public let protocolVersion: String
    /// The cipher suite's OpenSSL name ("TLS_AES_256_GCM_SHA384").
    public let cipher: String
    /// The protocol ALPN settled on, nil without ALPN.
    public let alpnProtocol: String?
    /// The server name the client sent (SNI), nil if none.
    public let serverName: String?
    /// The client certificate's subject in RFC 2253 form ("CN=alice,O=Example"), nil without one.
    public let peerSubject: String?
    /// Whether and how the client's certificate verified.
    public let peerVerification: PeerVerification

    /// Groups the fields (the session fills them after the handshake; tests may build their own).
    public init(
        protocolVersion: String, cipher: String, alpnProtocol: String?, serverName: String?, peerSubject: String?,
        peerVerification: PeerVerification
    ) {
        self.protocolVersion = protocolVersion
        self.cipher = cipher
        self.alpnProtocol = alpnProtocol
        self.serverName = serverName
        self.peerSubject = peerSubject
        self.peerVerification = peerVerification
    }

    /// Whether the client presented a certificate that verified.
    public var isPeerVerified: Bool { peerVerification == .verified }
}
