import Glibc
import Logging

/// Zero-downtime restart: this program re-executes itself with its servers' listeners inherited, the new
/// process starts serving on the very same sockets, and then this one stops accepting and drains.
///
/// The hand-over is socket activation (`SocketActivation`): the new process finds its listeners at 3, 4, ...
/// and adopts them with `TCPServer(adopting:...)`, then calls `ServiceNotifier.ready()`, which reports down
/// a pipe to this process. Nothing is ever closed in between: connections arriving during the hand-over
/// wait in the one accept queue both processes share, and the new process takes them, so no client is
/// refused. Then call `shutdown()` and `serverClose()` on the old servers, which let open connections
/// finish for up to their `shutdownTimeout`.
///
/// ```swift
/// // On SIGUSR2, on the signal-watching thread:
/// let pid = try ProcessRestart.reexecute(servers: [server], logger: logger)
/// server.shutdown()      // serveForever returns on the serving thread, which then calls serverClose()
/// ```
public enum ProcessRestart {
    /// Starts this program again (the file `/proc/self/exe` links to: a new build installed at that path
    /// is what runs) with the same arguments and environment, and `servers`' sockets as its inherited listeners, in
    /// that order; waits until it reports ready.
    ///
    /// Blocks the calling thread for up to `readyTimeout` (the servers keep serving meanwhile, on their own
    /// threads; a `ForkingMode` server forks no child until this returns, its connections queue meanwhile). On success the servers give up their Unix socket files (the new process serves them; a
    /// later `serverClose()` leaves the path in place) and the new process runs on, independent: it is this
    /// process's child until this one exits, and must survive it (it is not reaped here).
    /// - Parameters:
    ///   - servers: the servers whose listeners to hand on; each must still be open.
    ///   - names: `LISTEN_FDNAMES` for the new process, one per server; empty for none.
    ///   - arguments: the new process's `argv`; by default this process's. The default is evaluated where
    ///     this is called: in a process with a `ForkingMode` server, pass a copy made before serving, as
    ///     `servers` (a child forked while another thread makes its first such array can inherit a runtime
    ///     lock held).
    ///   - readyTimeout: how long the new process may take to report ready.
    ///   - logger: where the hand-over is logged (`.notice`).
    /// - Returns: the new process's pid.
    /// - Throws: `SocketServerError.processStartFailed` when it could not be started, exited, or did not
    ///   report ready in time (then it is killed and reaped); the servers are unchanged and keep serving.
    @discardableResult
    public static func reexecute(
        servers: [TCPServer],
        names: [String] = [],
        arguments: [String] = CommandLine.arguments,
        readyTimeout: Duration = .seconds(30),
        logger: Logger
    ) throws -> pid_t {
        // A ForkingMode server forking meanwhile could copy a lock this thread holds into its child.
        var child: pid_t = 0
        try ForkExclusion.excludingForks {
            child = try handOver(
                servers: servers, names: names, arguments: arguments, readyTimeout: readyTimeout, logger: logger)
        }
        return child
    }

    private static func handOver(
        servers: [TCPServer], names: [String], arguments: [String], readyTimeout: Duration, logger: Logger
    ) throws -> pid_t {
        let spawner = ProcessSpawner(arguments: arguments)
        let child = try spawner.spawn(listeners: servers.map(\.socket), names: names)
        logger.notice(
            "restarting: new process started", metadata: ["socketserver.process.pid": "\(child.pid)"])
        guard ProcessSpawner.awaitReady(child, timeout: readyTimeout) else {
            kill(child.pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
            throw SocketServerError.processStartFailed(
                "the new process \(child.pid) exited or did not report ready within \(readyTimeout)")
        }
        for server in servers { server.relinquishSocketFile() }
        logger.notice("restarting: new process serves", metadata: ["socketserver.process.pid": "\(child.pid)"])
        return child.pid
    }
}
