/// A datagram server on a Unix socket path (Python's `socketserver.UnixDatagramServer`).
///
/// A client must bind its own socket to a path to get replies. Like `UnixStreamServer`, it removes a stale
/// socket file before binding and its own on close. Derives from `UDPServer`, as in Python.
open class UnixDatagramServer: UDPServer, @unchecked Sendable {
    /// An adopted listener must be a Unix socket.
    override class var requiredFamilies: Set<AddressFamily> { [.unix] }
}
