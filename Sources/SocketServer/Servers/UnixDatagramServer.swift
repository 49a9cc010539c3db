/// A datagram server on a Unix socket path (Python's `socketserver.UnixDatagramServer`).
///
/// A client must bind its own socket to a path to get replies. Like `UnixStreamServer`, it removes a stale
/// socket file before binding and its own on close.
open class UnixDatagramServer: UDPServer, @unchecked Sendable {
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
