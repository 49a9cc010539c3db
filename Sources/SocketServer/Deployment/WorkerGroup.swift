import CSocketServerShims
import Glibc
import Logging
import Synchronization

/// Prefork worker processes: N copies of this program serving the same listeners, each replaced when it
/// dies, all drained on `shutdown()`.
///
/// The process that creates the group (the master) binds the listeners, then calls `run()`, which starts
/// the workers by executing this program again (the file `/proc/self/exe` links to, the same arguments) with
/// the listeners
/// inherited the socket-activation way (`SocketActivation`) and `WorkerGroup.currentWorkerIndex` set. A
/// worker adopts them (`TCPServer(adopting:...)`), serves, and calls `ServiceNotifier.ready()`; on SIGTERM
/// it stops accepting and drains like any server. The master serves nothing itself and holds every
/// listener open until the group is done, so no worker ever closes the last reference to a listener: the
/// connections in an accept queue survive a worker's death (on Linux, closing a listener resets them).
///
/// ```swift
/// let listener = try TCPServer(.loopback(port: 8000), handler: EchoHandler.self, bindAndActivate: true)
/// let group = try WorkerGroup(listeners: .shared([listener.socket]), configuration: .init(workers: 4),
///                             logger: logger, notifier: ServiceNotifier())
/// // SIGTERM (taken by a signal-watching thread) → group.shutdown()
/// try group.run()
/// listener.serverClose()
/// ```
///
/// Threads: `run()` blocks the calling thread, which must live until it returns (the workers get SIGTERM
/// when it exits, `PR_SET_PDEATHSIG`); `shutdown()` and `workerPIDs` are safe from any thread. The group
/// owns the worker processes (it reaps every one it started) but not the listeners. It catches no signals:
/// wire SIGTERM to `shutdown()` yourself.
public final class WorkerGroup: Sendable {
    /// The index (0 ..< workers) this process has in the group that started it; nil when it is not a worker.
    /// Reads the environment: ask early in `main`.
    public static var currentWorkerIndex: Int? {
        SocketActivation.environmentValue(InheritanceEnvironment.workerIndex).flatMap { Int($0) }
    }

    /// The sockets worker `i` inherits: `socketSets[i]`, or `socketSets[0]` for every worker when shared.
    /// Kept as a plain array rather than the `Listeners` enum, whose `perWorker` case Swift stores with its
    /// tag in the array pointer's spare bits: LeakSanitizer cannot follow such a pointer and reported the
    /// sockets as leaked by a master whose group was still alive at exit.
    private let socketSets: [[Socket]]
    private let sharesSockets: Bool
    private let configuration: Configuration
    private let logger: Logger
    private let notifier: ServiceNotifier?
    private let whenReady: (@Sendable () -> Void)?
    private let stopRequested = Atomic(false)
    /// The wake-up pipe of `shutdown()`: [read, write].
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let livePIDs = SanitizedMutex<[pid_t]>([])

    /// Creates the group; starts nothing until `run()`.
    /// - Parameters:
    ///   - listeners: the bound sockets the workers inherit; they stay the caller's to close after `run()`.
    ///   - configuration: how many workers and their timeouts; checked here.
    ///   - logger: where worker starts, deaths and replacements are logged.
    ///   - notifier: told `READY=1` once every worker is ready the first time, and `STOPPING=1` on
    ///     `shutdown()` (the workers' own `NOTIFY_SOCKET` is removed: the master speaks for the group).
    ///   - whenReady: runs once, on `run()`'s thread, when every worker is ready the first time, before the
    ///     notifier is told.
    /// - Throws: `SocketServerError.invalidConfiguration` for a bad configuration, or `perWorker` listeners
    ///   whose count is not `workers`; `SocketError` when the wake-up pipe cannot be made.
    public init(
        listeners: Listeners,
        configuration: Configuration,
        logger: Logger,
        notifier: ServiceNotifier? = nil,
        whenReady: (@Sendable () -> Void)? = nil
    ) throws {
        try configuration.validate()
        if case .perWorker(let sets) = listeners, sets.count != configuration.workers {
            throw SocketServerError.invalidConfiguration(
                "perWorker listeners has \(sets.count) sets for \(configuration.workers) workers")
        }
        var ends: [Int32] = [-1, -1]
        guard CSocketServerShims_pipe2(&ends, O_CLOEXEC | O_NONBLOCK) == 0 else {
            throw SocketError(operation: "pipe2", code: errno)
        }
        switch listeners {
        case .shared(let shared):
            socketSets = [shared]
            sharesSockets = true
        case .perWorker(let sets):
            socketSets = sets
            sharesSockets = false
        }
        self.configuration = configuration
        self.logger = logger
        self.notifier = notifier
        self.whenReady = whenReady
        wakeRead = ends[0]
        wakeWrite = ends[1]
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    /// The pids of the workers running now, in slot order (a slot waiting for its replacement is left out).
    public var workerPIDs: [pid_t] { livePIDs.withLock { $0 } }

    /// Asks `run()` to stop: SIGTERM to every worker, SIGKILL to those still running after `stopTimeout`.
    /// Returns at once; safe from any thread (a signal-watching thread, typically), any number of times.
    public func shutdown() {
        guard !stopRequested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    /// Starts the workers and supervises them until `shutdown()` and the last worker's exit.
    ///
    /// Blocks the calling thread, which waits in `poll` on one pidfd per worker, the workers' readiness
    /// pipes and the wake-up pipe: no polling interval. A worker that exits (or is killed) while the group
    /// runs is logged at `.warning` and replaced after `restartDelay`.
    /// - Throws: `SocketServerError.processStartFailed` when the first start of a worker fails outright
    ///   (the program cannot be executed); the workers already started are stopped first.
    public func run() throws {
        var supervisor = Supervisor(group: self)
        try supervisor.run()
    }

    // MARK: - Internals shared with the supervisor

    fileprivate func spawnWorker(_ index: Int) throws -> ProcessSpawner.Child {
        let sockets = sharesSockets ? socketSets[0] : socketSets[index]
        var spawner = ProcessSpawner(arguments: configuration.arguments)
        spawner.environment = [
            InheritanceEnvironment.workerIndex: "\(index)",
            InheritanceEnvironment.notifySocket: nil,
        ]
        spawner.parentDeathSignal = SIGTERM
        return try spawner.spawn(listeners: sockets, names: [])
    }

    fileprivate var settings: Configuration { configuration }
    fileprivate var log: Logger { logger }
    fileprivate func announceReady() {
        whenReady?()
        notifier?.ready()
    }
    fileprivate func notifyStopping() { notifier?.stopping() }
    fileprivate var wakeDescriptor: Int32 { wakeRead }
    fileprivate var isStopRequested: Bool { stopRequested.load(ordering: .acquiring) }
    fileprivate func publish(_ pids: [pid_t]) { livePIDs.withLock { $0 = pids } }
}

/// The state `WorkerGroup.run()` keeps on its own thread: one slot per worker.
private struct Supervisor {
    struct Slot {
        var pid: pid_t = 0
        var pidfd: Int32 = -1
        var readyFD: Int32 = -1
        var startedAt = ContinuousClock.now
        var restartAt: ContinuousClock.Instant?
        var delay: Duration
        var isReady = false
    }

    let group: WorkerGroup
    var slots: [Slot]
    var announcedReady = false
    var stopDeadline: ContinuousClock.Instant?

    init(group: WorkerGroup) {
        self.group = group
        slots = Array(repeating: Slot(delay: group.settings.restartDelay), count: group.settings.workers)
    }

    mutating func run() throws {
        for index in slots.indices {
            do {
                try start(index)
            } catch {
                group.log.error("cannot start worker", metadata: worker(index, error: error))
                stopAll()
                while slots.contains(where: { $0.pid != 0 }) { waitOnce() }
                throw error
            }
        }
        publish()
        while true {
            if group.isStopRequested, stopDeadline == nil { beginStop() }
            if stopDeadline != nil, !slots.contains(where: { $0.pid != 0 }) { break }
            waitOnce()
            restartDue()
        }
        group.log.notice("all workers stopped")
    }

    /// Starts slot `index`'s worker.
    mutating func start(_ index: Int) throws {
        let child = try group.spawnWorker(index)
        slots[index].pid = child.pid
        slots[index].readyFD = child.readyDescriptor
        slots[index].pidfd = CSocketServerShims_pidfd_open(child.pid, 0)
        slots[index].startedAt = .now
        slots[index].restartAt = nil
        slots[index].isReady = false
        group.log.info("worker started", metadata: worker(index, pid: child.pid))
    }

    /// One `poll` over the wake-up pipe, every pidfd and every pending readiness pipe, and what it reports.
    mutating func waitOnce() {
        var entries = [pollfd(fd: group.wakeDescriptor, events: Int16(POLLIN), revents: 0)]
        var owners: [(slot: Int, isReady: Bool)] = [(-1, false)]
        for (index, slot) in slots.enumerated() where slot.pid != 0 {
            entries.append(pollfd(fd: slot.pidfd, events: Int16(POLLIN), revents: 0))
            owners.append((index, false))
            if slot.readyFD >= 0 {
                entries.append(pollfd(fd: slot.readyFD, events: Int16(POLLIN), revents: 0))
                owners.append((index, true))
            }
        }
        let result = poll(&entries, nfds_t(entries.count), milliseconds(until: nextDeadline()))
        guard result > 0 else { return checkDeadlines() }
        if entries[0].revents != 0 {
            var buffer = [UInt8](repeating: 0, count: 16)
            _ = buffer.withUnsafeMutableBytes { read(group.wakeDescriptor, $0.baseAddress, $0.count) }
        }
        for (entry, owner) in zip(entries, owners).dropFirst() where entry.revents != 0 {
            if owner.isReady { readReadiness(owner.slot) } else { reap(owner.slot) }
        }
        checkDeadlines()
    }

    /// Reads `READY=1` (or end of file) from a worker's readiness pipe.
    mutating func readReadiness(_ index: Int) {
        var buffer = [UInt8](repeating: 0, count: 64)
        let fd = slots[index].readyFD
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 && (errno == EINTR || errno == EAGAIN) { return }
        close(fd)
        slots[index].readyFD = -1
        guard count > 0, String(decoding: buffer[..<count], as: UTF8.self).contains("READY=1") else { return }
        slots[index].isReady = true
        group.log.info("worker ready", metadata: worker(index, pid: slots[index].pid))
        if !announcedReady, stopDeadline == nil, slots.allSatisfy(\.isReady) {
            announcedReady = true
            group.announceReady()
        }
    }

    /// Reaps a worker whose pidfd says it exited, and schedules its replacement unless the group stops.
    mutating func reap(_ index: Int) {
        var status: Int32 = 0
        let pid = slots[index].pid
        var result: pid_t
        repeat { result = waitpid(pid, &status, WNOHANG) } while result < 0 && errno == EINTR
        guard result == pid || (result < 0 && errno == ECHILD) else { return }
        close(slots[index].pidfd)
        if slots[index].readyFD >= 0 { close(slots[index].readyFD) }
        let lived = ContinuousClock.now - slots[index].startedAt
        slots[index].pid = 0
        slots[index].pidfd = -1
        slots[index].readyFD = -1
        slots[index].isReady = false
        let signal = status & 0x7F
        let outcome = signal == 0 ? "exit status \((status >> 8) & 0xFF)" : "signal \(signal)"
        if stopDeadline != nil {
            group.log.info("worker stopped", metadata: worker(index, pid: pid, outcome: outcome))
        } else {
            let base = group.settings.restartDelay
            slots[index].delay = lived < .seconds(1) ? min(slots[index].delay * 2, base * 64) : base
            if slots[index].delay == .zero { slots[index].delay = .milliseconds(1) }
            slots[index].restartAt = .now + slots[index].delay
            group.log.warning(
                "worker died; replacing it",
                metadata: worker(index, pid: pid, outcome: outcome))
        }
        publish()
    }

    /// Starts the replacements whose delay has passed.
    mutating func restartDue() {
        guard stopDeadline == nil else { return }
        for index in slots.indices {
            guard slots[index].pid == 0, let due = slots[index].restartAt, due <= .now else { continue }
            do {
                try start(index)
            } catch {
                slots[index].restartAt = .now + slots[index].delay
                group.log.error("cannot replace worker", metadata: worker(index, error: error))
            }
        }
        publish()
    }

    /// A worker past its ready timeout is killed (and replaced when reaped); past the stop timeout, all are.
    mutating func checkDeadlines() {
        let now = ContinuousClock.now
        if let stopDeadline, now >= stopDeadline {
            for slot in slots where slot.pid != 0 { kill(slot.pid, SIGKILL) }
            self.stopDeadline = now + .seconds(1)  // SIGKILL again then, if a pidfd still has not fired
            return
        }
        for (index, slot) in slots.enumerated() where slot.pid != 0 && !slot.isReady && slot.readyFD >= 0 {
            if now - slot.startedAt >= group.settings.readyTimeout {
                group.log.warning("worker did not report ready in time; killing it", metadata: worker(index))
                kill(slot.pid, SIGKILL)
            }
        }
    }

    mutating func beginStop() {
        stopDeadline = .now + group.settings.stopTimeout
        group.notifyStopping()
        let running = slots.filter { $0.pid != 0 }.count
        group.log.notice("stopping workers", metadata: ["socketserver.workers": "\(running)"])
        stopAll()
    }

    func stopAll() {
        for slot in slots where slot.pid != 0 { kill(slot.pid, SIGTERM) }
    }

    /// The nearest moment something must happen without an event: a restart, a ready timeout, the stop timeout.
    func nextDeadline() -> ContinuousClock.Instant? {
        var deadlines: [ContinuousClock.Instant] = slots.compactMap(\.restartAt)
        for slot in slots where slot.pid != 0 && !slot.isReady && slot.readyFD >= 0 {
            deadlines.append(slot.startedAt + group.settings.readyTimeout)
        }
        if let stopDeadline { deadlines.append(stopDeadline) }
        return deadlines.min()
    }

    func milliseconds(until deadline: ContinuousClock.Instant?) -> Int32 {
        guard let deadline else { return -1 }
        let remaining = deadline - .now
        guard remaining > .zero else { return 0 }
        let (seconds, attoseconds) = remaining.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
    }

    /// A worker's log metadata.
    func worker(_ index: Int, pid: pid_t? = nil, outcome: String? = nil, error: (any Error)? = nil) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["socketserver.worker": "\(index)"]
        if let pid { metadata["socketserver.process.pid"] = "\(pid)" }
        if let outcome { metadata["socketserver.worker.outcome"] = "\(outcome)" }
        if let error { metadata["socketserver.error"] = "\(error)" }
        return metadata
    }

    func publish() {
        group.publish(slots.map(\.pid).filter { $0 != 0 })
    }
}
