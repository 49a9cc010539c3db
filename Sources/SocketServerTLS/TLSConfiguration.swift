/// Everything a TLS server needs: its certificates (a default and one per server name), the TLS versions,
/// ALPN, client-certificate verification and the handshake timeout.
///
/// A value: build it once, hand it to `TLSContext`. Nothing is read or checked until the context is made.
///
/// ```swift
/// let tls = try TLSContext(TLSConfiguration(
///     certificate: .files(certificateChain: "cert.pem", privateKey: "key.pem"),
///     alpn: ["http/1.1"]))
/// ```
public struct TLSConfiguration: Sendable, Hashable {
    /// The lowest and highest TLS version a handshake may settle on.
    public enum Version: Int32, Sendable, Hashable, Comparable {
        /// TLS 1.2 (RFC 5246).
        case tls12 = 0x0303
        /// TLS 1.3 (RFC 8446).
        case tls13 = 0x0304

        /// Orders versions by age.
        public static func < (lhs: Version, rhs: Version) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// Whether clients must present a certificate (mutual TLS).
    public enum ClientAuthentication: Sendable, Hashable {
        /// Clients are not asked for a certificate (the default).
        case none
        /// Clients are asked; one that sends none, or one that does not verify against the CA file, is still
        /// served, and the handler and `verifyRequest` see `TLSConnectionInfo.peerVerification`.
        case optional(trustedCAFile: String)
        /// Clients must send a certificate that verifies against the CAs in the PEM file; the handshake of any
        /// other client fails (it never reaches `verifyRequest` or the handler).
        case required(trustedCAFile: String)
    }

    /// The default certificate: for clients that send no server name or one without its own.
    public var certificate: TLSCertificateSource
    /// A certificate per server name (SNI), lower-case host names; `*.example.com` matches one label.
    public var serverNames: [String: TLSCertificateSource]
    /// The protocols offered to ALPN, most preferred first (`["h2", "http/1.1"]`); empty: no ALPN. A client
    /// offering none of them gets no ALPN answer.
    public var alpn: [String]
    /// The lowest version accepted. Default TLS 1.2.
    public var minimumVersion: Version
    /// The highest version accepted. Default TLS 1.3.
    public var maximumVersion: Version
    /// Client-certificate verification. Default `.none`.
    public var clientAuthentication: ClientAuthentication
    /// How long a handshake may take, from accept to finished, before the connection is closed. Default 10 s.
    public var handshakeTimeout: Duration

    /// A configuration; only `certificate` is required.
    public init(
        certificate: TLSCertificateSource,
        serverNames: [String: TLSCertificateSource] = [:],
        alpn: [String] = [],
        minimumVersion: Version = .tls12,
        maximumVersion: Version = .tls13,
        clientAuthentication: ClientAuthentication = .none,
        handshakeTimeout: Duration = .seconds(10)
    ) {
        self.certificate = certificate
        self.serverNames = serverNames
        self.alpn = alpn
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.clientAuthentication = clientAuthentication
        self.handshakeTimeout = handshakeTimeout
    }
}
