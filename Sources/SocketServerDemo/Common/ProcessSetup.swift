import SocketServer

/// How this process was started: with inherited listeners (systemd socket activation, a restart by
/// SIGUSR2, a worker of `--processes`) or not, and whom to tell that it serves.
///
/// Read once, first thing in a service's `run()` after `ShutdownSignals.block()`, while no other thread
/// exists: it reads and unsets the environment.
struct ProcessSetup {
    /// The listeners this process inherited, in descriptor order; empty when it binds its own.
    let inherited: [Socket]
    /// systemd, the process that restarted this one, or the worker group's master.
    let notifier: ServiceNotifier
    /// Whether this process is a worker of a `--processes` group (it then serves its inherited listener
    /// and ignores `--processes`).
    let isWorker: Bool

    /// Reads the environment.
    /// - Throws: `SocketServerError.invalidListener` for a malformed `LISTEN_FDS` or a descriptor that is not
    ///   a socket.
    static func read() throws -> ProcessSetup {
        let isWorker = WorkerGroup.currentWorkerIndex != nil
        let inherited = try SocketActivation.listeners().map(\.socket)
        return ProcessSetup(inherited: inherited, notifier: ServiceNotifier(), isWorker: isWorker)
    }
}
