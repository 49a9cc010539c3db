/// A stream server on a Unix socket path (Python's `socketserver.UnixStreamServer`).
///
/// Unlike Python, it removes a stale socket file at the path before binding (only if that file is a
/// socket nobody accepts on) and removes its own socket file on `serverClose()`, so a restarted server binds
/// again. The address family comes from the address, so this class only names what `TCPServer` does with a
/// Unix address.
open class UnixStreamServer: TCPServer, @unchecked Sendable {
    /// An adopted listener must be a Unix socket.
    override class var requiredFamilies: Set<AddressFamily> { [.unix] }
}
