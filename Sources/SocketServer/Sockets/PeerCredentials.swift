/// Who is at the other end of a Unix stream connection, as the kernel recorded it when the peer connected
/// (`SO_PEERCRED`): see `Socket.peerCredentials`.
///
/// A server that admits only given users checks it in `verifyRequest`:
///
/// ```swift
/// override func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool {
///     try request.socket?.peerCredentials.uid == getuid()
/// }
/// ```
public struct PeerCredentials: Sendable, Hashable, CustomStringConvertible {
    /// The peer's process id (0 when the peer is in another pid namespace or not a process).
    public let pid: Int32
    /// The peer's effective user id.
    public let uid: UInt32
    /// The peer's effective group id.
    public let gid: UInt32

    /// Groups the three ids (tests and custom request sources build their own).
    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// `pid=P uid=U gid=G`.
    public var description: String { "pid=\(pid) uid=\(uid) gid=\(gid)" }
}
