extension WorkerGroup {
    /// How many workers a `WorkerGroup` runs and how it treats them.
    public struct Configuration: Sendable {
        /// The number of worker processes, 1...1024.
        public var workers: Int
        /// How long a worker may take from its start to `READY=1` (`ServiceNotifier.ready()`); one that
        /// takes longer is killed and replaced.
        public var readyTimeout: Duration
        /// How long the workers may drain after `shutdown()` sent them SIGTERM; the ones still running then
        /// get SIGKILL. Make it longer than the workers' own `shutdownTimeout`.
        public var stopTimeout: Duration
        /// The pause before a dead worker is replaced; it doubles (up to 64 times) while replacements die
        /// within a second of starting, so a worker that cannot start does not make the group spin.
        public var restartDelay: Duration
        /// The workers' `argv`, program name first; by default this process's.
        public var arguments: [String]

        /// Creates a configuration; `validate()` (called by `WorkerGroup.init`) checks the values.
        public init(
            workers: Int,
            readyTimeout: Duration = .seconds(30),
            stopTimeout: Duration = .seconds(30),
            restartDelay: Duration = .milliseconds(100),
            arguments: [String] = CommandLine.arguments
        ) {
            self.workers = workers
            self.readyTimeout = readyTimeout
            self.stopTimeout = stopTimeout
            self.restartDelay = restartDelay
            self.arguments = arguments
        }

        /// Checks every value.
        /// - Throws: `SocketServerError.invalidConfiguration` naming the first value out of range.
        public func validate() throws {
            guard (1...1024).contains(workers) else {
                throw SocketServerError.invalidConfiguration("workers must be 1...1024, not \(workers)")
            }
            guard readyTimeout > .zero, stopTimeout > .zero, restartDelay >= .zero else {
                throw SocketServerError.invalidConfiguration("readyTimeout and stopTimeout must be positive")
            }
            guard !arguments.isEmpty else {
                throw SocketServerError.invalidConfiguration("arguments needs at least the program's name")
            }
        }
    }

    /// Which listeners each worker inherits.
    public enum Listeners: Sendable {
        /// Every worker inherits the same sockets and the kernel hands each connection (or datagram) to
        /// whichever worker accepts first; one accept queue, so a worker that dies loses nothing queued.
        case shared([Socket])
        /// Worker `i` inherits the sockets at index `i` (for example one `SO_REUSEPORT` listener per worker,
        /// bound to the same address: the kernel spreads connections evenly by hash). The group keeps
        /// every socket open while it runs, so a dead worker's queued connections wait for its replacement.
        case perWorker([[Socket]])
    }
}
