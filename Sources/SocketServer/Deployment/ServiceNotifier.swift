import Glibc
import Synchronization

/// Tells whoever started this process how it is doing: systemd through `sd_notify(3)`'s protocol (a
/// datagram to `NOTIFY_SOCKET`), and a process that re-executed it (`ProcessRestart`) or started it as a
/// worker (`WorkerGroup`) through the readiness pipe they passed. Does nothing when neither is there.
///
/// Send `ready()` once the servers listen and are about to serve (connections arriving meanwhile wait in the
/// listen backlog), and `stopping()` when a shutdown begins. Each call is a few system calls on the calling
/// thread and never blocks for long (a datagram, a pipe write); safe from any thread.
public final class ServiceNotifier: Sendable {
    /// systemd's socket, if `NOTIFY_SOCKET` names a usable one.
    private let notifySocket: SocketAddress?
    /// The readiness pipe's write end, -1 once used (or when there is none).
    private let readyDescriptor: Atomic<Int32>

    /// Reads `NOTIFY_SOCKET` and the readiness pipe's variable; call once, early in `main`, before other
    /// threads exist (the environment is not thread-safe).
    /// - Parameter unsetEnvironment: remove both variables so that child processes do not notify in this
    ///   process's name. Default false: systemd's convention is to leave `NOTIFY_SOCKET` set.
    public init(unsetEnvironment: Bool = false) {
        let socketText = SocketActivation.environmentValue(InheritanceEnvironment.notifySocket)
        let readyText = SocketActivation.environmentValue(InheritanceEnvironment.readyFD)
        // The variable always goes: a child must never write to a pipe meant for this process.
        unsetenv(InheritanceEnvironment.readyFD)
        if unsetEnvironment { unsetenv(InheritanceEnvironment.notifySocket) }
        notifySocket = socketText.flatMap(Self.address(fromNotifySocket:))
        var ready: Int32 = -1
        if let readyText, let fd = Int32(readyText), fd >= 0, fcntl(fd, F_GETFD) >= 0 {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            ready = fd
        }
        readyDescriptor = Atomic(ready)
    }

    /// Whether anybody listens: systemd or a starting process.
    public var isActive: Bool { notifySocket != nil || readyDescriptor.load(ordering: .acquiring) >= 0 }

    /// `READY=1`: the service serves. Goes to systemd (with `MAINPID=` when this process was started by
    /// `ProcessRestart`, so that systemd follows the new main process; the unit needs `NotifyAccess=all`) and
    /// down the readiness pipe, which is then closed. Errors are ignored: readiness is advice.
    public func ready() {
        let fd = readyDescriptor.exchange(-1, ordering: .acquiringAndReleasing)
        var state = "READY=1"
        if fd >= 0 { state += "\nMAINPID=\(getpid())" }
        try? notify(state)
        if fd >= 0 {
            let message = Array("READY=1\n".utf8)
            _ = message.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            _ = close(fd)
        }
    }

    /// `STOPPING=1`: the service is shutting down (systemd then waits for the exit instead of calling it a
    /// failure). Errors are ignored.
    public func stopping() {
        try? notify("STOPPING=1")
    }

    /// `STATUS=text`, the line `systemctl status` shows. Errors are ignored.
    public func status(_ text: String) {
        try? notify("STATUS=" + String(text.map { $0.isNewline ? " " : $0 }))
    }

    /// Sends `state` (newline-separated `KEY=value` assignments) to systemd as one datagram; nothing when
    /// `NOTIFY_SOCKET` is unset.
    /// - Throws: `SocketError` from `socket` or `sendto` (for example `ECONNREFUSED` when nobody listens).
    public func notify(_ state: String) throws {
        guard let notifySocket else { return }
        let socket = try Socket(family: .unix, type: .datagram)
        defer { socket.close() }
        try socket.send(Array(state.utf8), to: notifySocket)
    }

    /// `NOTIFY_SOCKET`'s value as an address: a path, or `@name` for a Linux abstract name.
    static func address(fromNotifySocket text: String) -> SocketAddress? {
        guard let first = text.first else { return nil }
        switch first {
        case "@": return try? SocketAddress(unixPath: "\0" + text.dropFirst())
        case "/": return try? SocketAddress(unixPath: text)
        default: return nil
        }
    }
}
