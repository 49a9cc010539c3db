import CSocketServerShims
import Glibc
import Synchronization

/// A child process per request: Python's `ForkingMixIn`, with `maxChildren` enforced at fork time.
///
/// For each request the serving thread `fork()`s. The child never returns to the parent's event loop: it
/// closes its copy of the listening socket (a datagram server keeps it, since replies go out through it),
/// runs `finishRequest` with blocking I/O, reports a thrown error through `handleError`, runs
/// `shutdownRequest`, and leaves with `_exit` — status 0, or 1 after an error. The parent goes back to the
/// loop at once, keeping its copy of a connection until the child has exited, then releases it with
/// `closeRequest` (never a half-close, which would end the child's conversation) — or, when the child's
/// handler parked the connection (`StreamRequestHandler.parkConnection(idleTimeout:)`, reported through a
/// pipe made for each child), parks it on the serving loop, so that the next request forks a new child.
/// A child closes, right after `fork`, the other connections and pipes the parent holds.
///
/// Children are reaped as soon as they exit, without a new request arriving: each is watched through a
/// pidfd on the serving loop, and `serviceActions()`/`handleTimeout()` reap too (the reference's places,
/// and the fallback where pidfds are missing). Only the server's own children are ever waited for
/// (`waitpid(pid)`, never `waitpid(-1)`), so a child that other code started keeps its exit status.
///
/// At `maxChildren` live children the server disables its listener until one exits; `serveForever` never
/// spins and never blocks there. (The reference only reaps down to `max_children` lazily.)
///
/// Costs a `fork` per request (page tables copied, memory shared copy-on-write) and, in the parent, a
/// pidfd, a pipe end and the connection's descriptor per live child. The child is a copy of the process in which only the forking thread exists, holding every lock
/// as it was at that instant: if another thread was inside the Swift runtime (instantiating generic
/// metadata, for example) or held any other lock, the child can deadlock when it needs the same lock. So
/// fork from a process whose other threads are idle — a forking server normally has only its serving
/// thread — and in the handler start no threads and use no Dispatch queues. Under ThreadSanitizer a child
/// that starts a thread is killed.
///
/// A child also repeats, for every request, whatever its code does for the first time in the process,
/// since nothing it learns goes back to the parent. Two such costs are worth removing in a program that
/// forks (measured with callgrind in the demo; together 29,000 of a child's 48,000 instructions):
/// - a handler class that subclasses a generic class (a `DependentRequestHandler` subclass) has its
///   metadata built by the runtime at its first use (about 17,000 instructions): name the class once
///   before serving (pass `MyHandler.self` to a function, as `socketserver-demo` does) when handlers come
///   from a factory closure; a server given the class itself has it already;
/// - each library function called for the first time is bound lazily (about 1,250 instructions apiece):
///   link the executable with `-Xlinker -z -Xlinker now`.
public final class ForkingMode: ConcurrencyMode {
    private let maxChildrenValue: Atomic<Int>
    private let blockOnCloseFlag: Atomic<Bool>
    private let onChildExit: (@Sendable (ChildExit) -> Void)?
    private let state = SanitizedMutex(State())

    /// Creates the mode with the reference's defaults.
    ///
    /// - Parameters:
    ///   - maxChildren: the most children alive at once (Python's `max_children`); default 40, at least 1.
    ///   - blockOnClose: whether `serverClose()` waits for every child to exit (Python's `block_on_close`);
    ///     default true. When false, it reaps only children that have already exited; call
    ///     `collectChildren(blocking: true)` later, or the others stay zombies once they exit.
    ///   - onChildExit: called for each child reaped, on the thread that reaped it (usually the serving
    ///     one), for monitoring exit statuses. Keep it short.
    public init(
        maxChildren: Int = 40,
        blockOnClose: Bool = true,
        onChildExit: (@Sendable (ChildExit) -> Void)? = nil
    ) {
        self.maxChildrenValue = Atomic(max(maxChildren, 1))
        self.blockOnCloseFlag = Atomic(blockOnClose)
        self.onChildExit = onChildExit
    }

    /// Python's `max_children`: the most children alive at once. Lowering it below the live count makes the
    /// server wait until enough of them exit.
    public var maxChildren: Int {
        get { maxChildrenValue.load(ordering: .relaxed) }
        set {
            maxChildrenValue.store(max(newValue, 1), ordering: .relaxed)
            state.withLock { $0.server }?.refreshAccepting()
        }
    }

    /// Python's `block_on_close`: whether `serverClose()` waits for all children to exit.
    public var blockOnClose: Bool {
        get { blockOnCloseFlag.load(ordering: .relaxed) }
        set { blockOnCloseFlag.store(newValue, ordering: .relaxed) }
    }

    /// Python's `active_children`: the process ids of children not yet reaped (empty rather than `None`).
    public var activeChildren: Set<pid_t> { state.withLock { Set($0.children.keys) } }

    /// False while `maxChildren` children are alive.
    public var isAcceptingRequests: Bool {
        state.withLock { $0.children.count } < maxChildren
    }

    /// Reaps this server's children that have exited (Python's `collect_children`); with `blocking`, waits
    /// for every one of them to exit first. Safe from any thread. Never waits for processes it did not fork.
    public func collectChildren(blocking: Bool = false) {
        let pids = state.withLock { Array($0.children.keys) }
        for pid in pids { reap(pid, blocking: blocking) }
    }

    /// Forks; the child handles the request and exits, the parent closes its copy of the request.
    ///
    /// At `maxChildren` (reachable only through `handleRequest()` or a lowered `maxChildren`, since
    /// `serveForever` stops accepting there) first waits for one of its own children to exit.
    /// - Throws: `SocketError` from `fork` (`EAGAIN`, `ENOMEM`); the server then reports it and shuts the
    ///   request down.
    public func processRequest(_ request: Request, clientAddress: SocketAddress, server: BaseServer) throws {
        let loop = server.servingLoop
        state.withLock { state in
            state.server = server
            if loop != nil { state.retired.removeAll() }
        }
        waitForRoom()
        // A connection's parent copy stays open until the child exits, so that a child whose handler parks
        // the connection (`parkConnection`) can leave it to the parent; the pipe says whether it did.
        var channel: [Int32] = [-1, -1]
        if case .stream = request {
            if CSocketServerShims_pipe2(&channel, O_CLOEXEC | O_NONBLOCK) != 0 { channel = [-1, -1] }
        }
        // What the child must not keep: the other clients' connections and channels the parent holds.
        let inherited = state.withLock { $0.heldDescriptors } + (loop != nil ? server.parking.descriptors : [])
        // Unwritten stdio buffers would be inherited and written twice, once by each process.
        fflush(nil)
        // Not while a helper thread of the library does Swift work (see ForkExclusion).
        let pid = ForkExclusion.fork()
        if pid < 0 {
            let code = errno
            for end in channel where end >= 0 { _ = close(end) }
            throw SocketError(operation: "fork", code: code)
        }
        if pid == 0 {
            for descriptor in inherited where descriptor >= 0 { _ = close(descriptor) }
            if channel[0] >= 0 { _ = close(channel[0]) }
            server.parking.childChannel = channel[1]
            Self.runChild(request, clientAddress: clientAddress, server: server)
        }
        if channel[1] >= 0 { _ = close(channel[1]) }

        let keepsConnection = request.socket.map { !$0.isClosed } ?? false
        let children = state.withLock { state -> Int in
            let watch = loop.flatMap { loop in
                ChildExitWatch(pid: pid, loop: loop) { [weak self] in self?.childSignalledExit(pid) }
            }
            var child = Child(watch: watch, started: .now)
            if case .stream = request, keepsConnection {
                child.connection = HeldConnection(request: request, clientAddress: clientAddress, channel: channel[0])
            } else if channel[0] >= 0 {
                _ = close(channel[0])
            }
            state.children[pid] = child
            return state.children.count
        }
        if let observer = server.observer {
            // The child's request, as the parent sees it: from the fork to the reap (see `forget`).
            observer.requestStarted()
            observer.childProcessesChanged(children)
        }
        if !keepsConnection || request.socket?.type != .stream { server.closeRequest(request) }
        if !isAcceptingRequests { server.refreshAccepting() }
    }

    /// Reaps exited children (the reference reaps here after every request and poll interval).
    public func serviceActions(server: BaseServer) {
        let onLoop = server.servingLoop != nil
        state.withLock { state in
            state.server = server
            if onLoop { state.retired.removeAll() }
        }
        collectChildren()
    }

    /// Reaps exited children after `handleRequest()` timed out.
    public func handleTimeout(server: BaseServer) {
        collectChildren()
    }

    /// Stops watching and reaps: waits for every child when `blockOnClose`, else only the exited ones.
    public func serverClose(server: BaseServer) {
        // The server has stopped serving, so no watch callback runs now and their events may be freed; they
        // are freed after the lock is released, since freeing an event can wait for its callback.
        let released = state.withLock { state -> ReleasedWatches in
            var released = ReleasedWatches(watches: state.retired)
            state.retired.removeAll()
            for pid in Array(state.children.keys) {
                if let watch = state.children[pid]?.watch {
                    released.watches.append(watch)
                    state.children[pid]?.watch = nil
                }
            }
            return released
        }
        withExtendedLifetime(released) {}
        collectChildren(blocking: blockOnClose)
        // Children still running (blockOnClose false) keep their connections; the parent lets its copies go.
        let held = state.withLock { state -> [HeldConnection] in
            var held: [HeldConnection] = []
            for pid in Array(state.children.keys) {
                if let connection = state.children[pid]?.connection { held.append(connection) }
                state.children[pid]?.connection = nil
            }
            return held
        }
        for connection in held {
            connection.closeChannel()
            server.closeRequest(connection.request)
        }
    }

    // MARK: - Internals

    /// The child's whole life. Touches nothing shared with the parent's other threads (no locks of this
    /// mode, no event loop), then leaves without running atexit handlers or Swift/C++ destructors.
    private static func runChild(_ request: Request, clientAddress: SocketAddress, server: BaseServer) -> Never {
        let listener = server.fileDescriptor
        if listener >= 0 && request.socket?.fileDescriptor != listener {
            if let server = server as? TCPServer {
                server.socket.close()
            } else {
                _ = close(listener)
            }
        }
        var status: Int32 = 1
        do {
            try server.finishRequest(request, clientAddress: clientAddress)
            status = 0
        } catch {
            server.handleError(error, clientAddress: clientAddress)
        }
        server.shutdownRequest(request)
        // The report to the parent: whether the connection was parked, and the bytes counted on it.
        let channel = server.parking.childChannel
        if channel >= 0, let socket = request.socket {
            _ = ChildReport(
                parkTimeout: server.parking.childParkTimeout,
                bytesReceived: socket.readerBytes.load(ordering: .relaxed),
                bytesSent: socket.writerBytes.load(ordering: .relaxed)
            ).write(to: channel)
        }
        fflush(nil)
        _exit(status)
    }

    /// A child's pidfd became readable: it has exited. Runs on the loop's thread.
    private func childSignalledExit(_ pid: pid_t) {
        reap(pid, blocking: false)
    }

    /// Waits for one child and forgets it once it has ended. Returns false when the child is still running or `waitpid` failed.
    @discardableResult
    private func reap(_ pid: pid_t, blocking: Bool) -> Bool {
        let exit: ChildExit?
        switch ChildProcess.wait(for: pid, blocking: blocking) {
        case .reaped(let childExit): exit = childExit
        case .gone: exit = nil
        case .running, .failed: return false
        }
        forget(pid, exit: exit)
        return true
    }

    /// Drops a child from the books, reports how it ended, and re-enables accepting if that made room.
    private func forget(_ pid: pid_t, exit: ChildExit?) {
        let limit = maxChildren
        let (started, wasFull, held, server, children) = state.withLock {
            state -> (ContinuousClock.Instant?, Bool, HeldConnection?, BaseServer?, Int) in
            let wasFull = state.children.count >= limit
            guard let entry = state.children.removeValue(forKey: pid) else { return (nil, false, nil, nil, 0) }
            // Its event may be the one firing right now: free it later, outside its own callback.
            if let watch = entry.watch { state.retired.append(watch) }
            return (entry.started, wasFull, entry.connection, state.server, state.children.count)
        }
        guard let started else { return }
        let observer = server?.observer
        if let observer {
            // A child that did not exit with status 0 failed its request (or was killed): `ChildExit` is the
            // error. Its bytes stay in the child; the connection's end is reported by `release` below.
            let failed = exit.map { $0.termination != .exited(0) } ?? false
            observer.requestFinished(duration: .now - started, error: failed ? exit : nil)
            observer.childProcessesChanged(children)
        }
        if let held { release(held, server: server, observer: observer) }
        if let exit { onChildExit?(exit) }
        if wasFull { server?.refreshAccepting() }
    }

    /// The child that served `held` has exited: park the parent's copy if the child parked it, else close it.
    private func release(_ held: HeldConnection, server: BaseServer?, observer: (any ServerObserver)?) {
        let report = held.readReport()
        held.closeChannel()
        guard let server else { return }
        // The child counted on its copy of this socket, which started from the parent's counts.
        if let report, case .stream(let socket) = held.request {
            socket.readerBytes.store(report.bytesReceived, ordering: .relaxed)
            socket.writerBytes.store(report.bytesSent, ordering: .relaxed)
        }
        if let timeout = report?.parkTimeout, case .stream(let socket) = held.request {
            server.parkHeldConnection(socket, clientAddress: held.clientAddress, idleTimeout: timeout)
        } else {
            // Its age since the accept, and the bytes the child reported (none from a child that died first).
            if let observer, case .stream(let socket) = held.request {
                ObservedConnection.closed(socket, observer: observer)
            }
            server.closeRequest(held.request)
        }
    }

    /// Blocks until fewer than `maxChildren` children are alive, waiting only for this server's own, and for
    /// whichever of them exits first (Python's `waitpid(-1)`, without reaping other code's children).
    private func waitForRoom() {
        while true {
            let children = state.withLock { state -> [pid_t] in
                state.children.count >= maxChildren ? Array(state.children.keys) : []
            }
            guard !children.isEmpty else { return }
            ChildProcess.waitForAnyExit(of: children)
            // Reaps every child that has exited, and forgets one that other code reaped (`ECHILD`).
            collectChildren()
        }
    }

    /// Watches taken out of the state to be freed once its lock is released. Only the closing thread holds
    /// them, while no loop runs their callbacks.
    private struct ReleasedWatches: @unchecked Sendable {
        var watches: [ChildExitWatch]
    }

    /// A live child: its exit watch and the parent's copy of its connection.
    private struct Child {
        var watch: ChildExitWatch?
        /// When it was forked: its request's start, for the observer.
        var started: ContinuousClock.Instant
        var connection: HeldConnection?
    }

    /// The parent's copy of a child's connection, and the read end of the pipe the child parks through.
    private struct HeldConnection {
        let request: Request
        let clientAddress: SocketAddress
        let channel: Int32

        /// The report the child wrote as it exited (it has exited), or nil (it died before writing one).
        func readReport() -> ChildReport? {
            guard channel >= 0 else { return nil }
            var bytes = [UInt8](repeating: 0, count: ChildReport.size)
            let count = bytes.withUnsafeMutableBytes { Glibc.read(channel, $0.baseAddress, $0.count) }
            guard count == ChildReport.size else { return nil }
            return ChildReport(decoding: bytes)
        }

        func closeChannel() {
            if channel >= 0 { _ = close(channel) }
        }
    }

    private struct State {
        var children: [pid_t: Child] = [:]

        /// The connection copies and channels held for live children, which a new child must close.
        var heldDescriptors: [Int32] {
            children.values.flatMap { child -> [Int32] in
                guard let held = child.connection else { return [] }
                return [held.request.socket?.fileDescriptor ?? -1, held.channel]
            }
        }
        /// Watches of reaped children, freed on the loop's thread outside their own callbacks.
        var retired: [ChildExitWatch] = []
        /// The server this mode runs for, to re-enable accepting after a reap.
        weak var server: BaseServer?
    }
}
