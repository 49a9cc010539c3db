/// The environment variables of the descriptor-passing protocols `SocketActivation`, `ServiceNotifier`,
/// `ProcessRestart` and `WorkerGroup` speak. The first four are systemd's; the last two are this library's.
enum InheritanceEnvironment {
    /// The pid the inherited descriptors are meant for.
    static let listenPID = "LISTEN_PID"
    /// How many descriptors, from 3 up, are inherited.
    static let listenFDs = "LISTEN_FDS"
    /// Their names, separated by colons.
    static let listenFDNames = "LISTEN_FDNAMES"
    /// systemd's notification socket (`sd_notify`), a path or `@` and an abstract name.
    static let notifySocket = "NOTIFY_SOCKET"
    /// The descriptor of a pipe on which a process started by `ProcessRestart` or `WorkerGroup` reports that
    /// it serves (`READY=1`), to the process that started it.
    static let readyFD = "SOCKETSERVER_READY_FD"
    /// The index (0 ..< count) of a worker process started by `WorkerGroup`.
    static let workerIndex = "SOCKETSERVER_WORKER_INDEX"
    /// The first inherited descriptor (`SD_LISTEN_FDS_START`).
    static let firstDescriptor: Int32 = 3
}
