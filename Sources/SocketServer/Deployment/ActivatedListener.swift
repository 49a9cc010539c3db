/// A socket this process inherited through the systemd socket-activation protocol, with its name.
public struct ActivatedListener: Sendable {
    /// The socket, owned by whoever takes it from here (give it to `TCPServer(adopting:...)`, or close it).
    public let socket: Socket
    /// Its name from `LISTEN_FDNAMES` (a socket unit's `FileDescriptorName=`, `systemd-socket-activate
    /// --fdname`); nil when none was given.
    public let name: String?
}
