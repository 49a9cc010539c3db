import Logging
import SocketServer

/// `echo --unix PATH --allow-uid UID`: a Unix stream server that serves only peers running as one user, from
/// the credentials the kernel recorded when they connected (`Socket.peerCredentials`, `SO_PEERCRED`).
final class AllowedUserServer: UnixStreamServer, @unchecked Sendable {
    /// The only uid served; nil serves everyone. Set before serving.
    var allowedUID: UInt32?

    /// Refuses (closes without a handler) a peer of another user, logged at info. On the serving thread, or,
    /// with TLS, after the handshake on the thread or loop that runs the connection.
    override func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool {
        guard let allowedUID else { return true }
        guard let credentials = try? request.socket?.peerCredentials else { return false }
        if credentials.uid == allowedUID { return true }
        logger.info(
            "refused a client of another user",
            metadata: ["socketserver.client.credentials": "\(credentials)", "socketserver.allowed.uid": "\(allowedUID)"])
        return false
    }
}
