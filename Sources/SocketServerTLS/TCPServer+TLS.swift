import Logging
import SocketServer

extension TCPServer {
    /// Serves every connection over TLS with `context`, in whatever mode the server runs (synchronous,
    /// threading, forking, pool, event, async), over TCP or a Unix stream socket.
    ///
    /// Call it once, before serving. Each handshake runs where the connection is served, never on the
    /// accepting thread: on the request's thread or child (blocking modes, bounded by the configuration's
    /// `handshakeTimeout`) or on its event loop (event and async mode, non-blocking). Only then does
    /// `verifyRequest` run, on that same thread or loop, so that it can read `request.tls`; a handshake that
    /// fails goes to `handleError` (logged at `.info` with OpenSSL's reason) and the handler never runs.
    /// Handlers are unchanged: `rfile`/`wfile`, `EventInput`/`EventConnection.write` and the async reader
    /// and writer carry plaintext.
    public func useTLS(_ context: TLSContext) {
        connectionSecurity = TLSSecurity(context)
    }

    /// The TLS context given to `useTLS(_:)`, nil for a plain server.
    public var tlsContext: TLSContext? { (connectionSecurity as? TLSSecurity)?.context }

    /// Reloads the TLS certificate files (`TLSContext.reloadCertificates()`): new handshakes use them,
    /// open connections keep theirs. When a file is missing or bad the last good certificates keep serving
    /// and the failure is logged at `.error` (the server's own fault) through `logger`. Any thread (the
    /// demo calls it on SIGHUP).
    /// - Returns: true when the new certificates are in use; false when the old ones stay (or the server
    ///   has no TLS).
    @discardableResult
    public func reloadCertificates() -> Bool {
        guard let context = tlsContext else { return false }
        do {
            try context.reloadCertificates()
            logger.info("TLS certificates reloaded")
            return true
        } catch {
            logger.error(
                "TLS certificate reload failed, keeping the previous certificates: \(error)",
                metadata: ["socketserver.error": "\(error)"])
            return false
        }
    }
}

extension Socket {
    /// What this connection's TLS handshake established; nil for a plain connection or before the
    /// handshake finished. Read it on the thread that runs the request (or the connection's loop).
    public var tls: TLSConnectionInfo? { (transport as? TLSSession)?.info }
}

extension Request {
    /// What the connection's TLS handshake established (for `verifyRequest`); nil for a plain connection.
    public var tls: TLSConnectionInfo? { socket?.tls }
}

extension EventConnection {
    /// What this connection's TLS handshake established; nil for a plain connection.
    public var tls: TLSConnectionInfo? { socket.tls }
}

extension AsyncHandlerContext {
    /// What the connection's TLS handshake established; nil for a plain connection.
    public var tls: TLSConnectionInfo? { socket?.tls }
}
