import Glibc

/// systemd socket activation: the listening sockets this process was started with (`sd_listen_fds(3)`).
///
/// A socket unit, `systemd-socket-activate`, `ProcessRestart` (re-executing this program) and `WorkerGroup`
/// (starting worker processes) all pass listeners the same way: descriptors from 3 up, `LISTEN_FDS` saying
/// how many, `LISTEN_PID` naming the process they are meant for, `LISTEN_FDNAMES` their names. Give each
/// socket to `TCPServer(adopting:...)` (or one of the other servers' adopting initialisers).
///
/// ```swift
/// let inherited = try SocketActivation.listeners()
/// let server = if let first = inherited.first {
///     try TCPServer(adopting: first.socket, handler: EchoHandler.self)
/// } else {
///     try TCPServer(.loopback(port: 8000), handler: EchoHandler.self)
/// }
/// ```
public enum SocketActivation {
    /// The inherited listeners, in descriptor order; empty when the process was not started that way
    /// (`LISTEN_PID` unset or another process's pid, which a child inherits by mistake).
    ///
    /// Each descriptor gets `FD_CLOEXEC` (so it reaches no program this one starts, unless handed on on
    /// purpose) and its type and family are read from the kernel. Call it once, early in `main`, before
    /// other threads exist: it reads and (by default) unsets the environment, which is not thread-safe.
    /// - Parameter unsetEnvironment: remove `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`, so that no child
    ///   process takes them for its own (the default, as systemd recommends).
    /// - Throws: `SocketServerError.invalidListener` when `LISTEN_FDS` is not a count, or a descriptor is not
    ///   an IPv4, IPv6 or Unix socket; `SocketError` (`EBADF`) when one is not open. Descriptors already
    ///   wrapped when this throws are closed.
    public static func listeners(unsetEnvironment: Bool = true) throws -> [ActivatedListener] {
        let pidText = environmentValue(InheritanceEnvironment.listenPID)
        let countText = environmentValue(InheritanceEnvironment.listenFDs)
        let namesText = environmentValue(InheritanceEnvironment.listenFDNames)
        if unsetEnvironment {
            for name in [InheritanceEnvironment.listenPID, InheritanceEnvironment.listenFDs,
                InheritanceEnvironment.listenFDNames]
            {
                unsetenv(name)
            }
        }
        guard let pidText, let pid = pid_t(pidText), pid == getpid() else { return [] }
        guard let countText, let count = Int32(countText), (0...4096).contains(count) else {
            throw SocketServerError.invalidListener("LISTEN_FDS is not a count of descriptors: \(countText ?? "unset")")
        }
        let names = namesText.map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        var listeners: [ActivatedListener] = []
        for index in 0..<count {
            let socket = try Socket(inheriting: InheritanceEnvironment.firstDescriptor + index)
            let name = Int(index) < names.count && !names[Int(index)].isEmpty ? names[Int(index)] : nil
            listeners.append(ActivatedListener(socket: socket, name: name))
        }
        return listeners
    }

    /// `getenv`, as a Swift string.
    static func environmentValue(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
