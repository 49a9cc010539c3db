/// A stream server on a Unix socket path (Python's `socketserver.UnixStreamServer`).
///
/// Unlike Python, it removes a stale socket file at the path before binding (only if that file is a
/// socket) and removes its own socket file on `serverClose()`, so a restarted server binds again.
open class UnixStreamServer: TCPServer, @unchecked Sendable {
    private var boundAddress: SocketAddress?

    /// Removes a stale socket file, binds, and remembers the path for removal on close.
    open override func serverBind() throws {
        UnixSocketFile.removeStale(at: serverAddress, type: Self.socketType)
        try super.serverBind()
        boundAddress = serverAddress
    }

    /// Closes the socket and removes its file.
    open override func serverClose() {
        super.serverClose()
        UnixSocketFile.removeOwn(at: boundAddress)
        boundAddress = nil
    }

    deinit {
        UnixSocketFile.removeOwn(at: boundAddress)
    }
}
