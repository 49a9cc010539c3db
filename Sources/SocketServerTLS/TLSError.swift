import COpenSSL
import SocketServer

/// Why a TLS handshake, session or certificate load failed, with OpenSSL's reason.
///
/// Handshake and session errors are the peer's doing (a plaintext client, an unknown CA, a reset), so a
/// server's `handleError` logs them at `.info`; certificate errors are the server's own (a bad file) and
/// come from `TLSContext`'s initialiser and `reloadCertificates()`.
public struct TLSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What failed.
    public enum Kind: Sendable, Hashable {
        /// The handshake failed (the reason says why: "wrong version number" for a plaintext client,
        /// "certificate verify failed" for an untrusted client certificate, ...).
        case handshakeFailed
        /// The handshake did not finish within `TLSConfiguration.handshakeTimeout`.
        case handshakeTimedOut
        /// A TLS error after the handshake (a bad record, a fatal alert from the peer).
        case protocolError
        /// A certificate, key, password or CA file could not be used.
        case invalidCertificate
    }

    /// What failed.
    public let kind: Kind
    /// OpenSSL's reason, or ours.
    public let reason: String

    /// An error of `kind` with `reason`.
    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    /// "TLS handshake failed: wrong version number", ...
    public var description: String {
        switch kind {
        case .handshakeFailed: "TLS handshake failed: \(reason)"
        case .handshakeTimedOut: "TLS handshake timed out: \(reason)"
        case .protocolError: "TLS error: \(reason)"
        case .invalidCertificate: "TLS certificate error: \(reason)"
        }
    }

    /// `kind` with the reasons in this thread's OpenSSL error queue (which it empties), or `fallback`.
    static func fromQueue(_ kind: Kind, fallback: String) -> TLSError {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            if let text = ERR_reason_error_string(code) {
                reasons.append(String(cString: text))
            } else {
                reasons.append("error \(code)")
            }
        }
        return TLSError(kind, reasons.isEmpty ? fallback : reasons.joined(separator: "; "))
    }
}

/// The peer caused handshake, timeout and protocol errors: `handleError` logs them at `.info`.
extension TLSError: PeerCausedError {}
