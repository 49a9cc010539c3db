import SocketServer

/// A server's TLS set-up: the configuration and the OpenSSL contexts built from it, swapped whole by
/// `reloadCertificates()`.
///
/// Make one, give it to a stream server with `TCPServer.useTLS(_:)`. New handshakes use the contexts current
/// when they start; connections already open keep theirs. Thread-safe: reload from any thread (a SIGHUP
/// handler's thread, a timer) while handshakes run on others.
public final class TLSContext: Sendable {
    /// What the context was built from; `reloadCertificates()` reads the same files again.
    public let configuration: TLSConfiguration
    private let current: SanitizedMutex<ContextSet>

    /// Builds the contexts, reading and checking every certificate, key, password and CA file now.
    /// - Throws: `TLSError.invalidCertificate` with the file and OpenSSL's reason.
    public init(_ configuration: TLSConfiguration) throws {
        self.configuration = configuration
        current = SanitizedMutex(try ContextSet(configuration))
    }

    /// Reads the certificate files again and, when everything loads, makes new handshakes use them. When
    /// something does not load, nothing changes: the last good certificates keep serving.
    ///
    /// Costs what building the contexts costs (reading and parsing the PEM files, a few milliseconds); the
    /// swap itself is one lock. Any thread.
    /// - Throws: `TLSError.invalidCertificate`, after which the previous certificates stay in use.
    public func reloadCertificates() throws {
        let fresh = try ContextSet(configuration)
        let old = current.withLock { set in
            let old = set
            set = fresh
            return UncheckedSet(old)
        }
        _ = old  // released here, outside the lock; sessions that still use it retain it
    }

    /// The contexts for a new handshake.
    var contexts: ContextSet { current.withLock { UncheckedSet($0) }.set }
}

/// Carries a context set out of the lock (it is immutable and thread-safe; `Sendable` only by declaration).
private struct UncheckedSet: @unchecked Sendable {
    let set: ContextSet
    init(_ set: ContextSet) { self.set = set }
}
