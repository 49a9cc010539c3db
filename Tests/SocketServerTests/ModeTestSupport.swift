import Dispatch
import Foundation
import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

/// Helpers shared by the concurrency-mode tests (threading, forking, pool, named servers).
enum ModeTest {
    /// How long `body` took.
    static func timed(_ body: () throws -> Void) rethrows -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        try body()
        return clock.now - start
    }

    /// Whether `pid` no longer exists (reaped; a zombie still exists).
    static func processIsGone(_ pid: pid_t) -> Bool {
        kill(pid, 0) == -1 && errno == ESRCH
    }

    /// Whether this kernel gives pidfds, which let a forking server reap without a loop tick.
    static let pidfdsAvailable: Bool = {
        guard let fd = ChildProcess.exitDescriptor(for: getpid()) else { return false }
        close(fd)
        return true
    }()

    /// Whether this test binary runs under ThreadSanitizer (`swift test --sanitize=thread`); its runtime is
    /// linked into the executable and exports its entry points.
    static let underThreadSanitizer = dlsym(nil, "__tsan_init") != nil

    /// Why the forking tests whose clients run in this process are skipped under ThreadSanitizer.
    static let forkingUnderSanitizerReason: Comment = """
        A forked child inherits the Swift runtime's metadata locks as they were at fork(). Under ThreadSanitizer \
        the test's own client code is slow enough to be inside one of them when the server forks, and the child \
        then deadlocks on its first generic call (observed: Slice/Range/Array metadata in once_slow). \
        ForkingWithExternalClientsTests covers forking under ThreadSanitizer with clients in other processes.
        """

    /// Whether OpenBSD netcat is installed (the Makefile installs it), for clients in other processes.
    static let netcatAvailable = access("/usr/bin/nc", X_OK) == 0 || access("/bin/nc", X_OK) == 0

    /// Runs `script` with `/bin/sh -c` in a new process (posix_spawn: nothing of this process runs in the
    /// child) and waits for it, blocking this thread in `waitpid`. Returns the exit status, or nil.
    static func runShell(_ script: String) -> Int32? {
        let words: [String] = ["sh", "-c", script]
        let arguments: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) }
        defer { for argument in arguments { free(argument) } }
        // The calling thread (a Dispatch worker) blocks signals, and a shell whose SIGCHLD stays blocked
        // never returns from `wait`: start the shell with nothing blocked and default dispositions.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGCHLD)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let spawned = (arguments + [nil]).withUnsafeBufferPointer { argv -> Int32 in
            guard let base = argv.baseAddress else { return EINVAL }
            return posix_spawn(&pid, "/bin/sh", nil, &attributes, UnsafeMutablePointer(mutating: base), environ)
        }
        guard spawned == 0 else { return nil }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            if errno != EINTR { return nil }
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil
    }

    /// Runs, once per process and without forking, every code path the forking tests use on either side.
    ///
    /// A forked child owns copies of every lock as they were at the fork. If another thread (here: the test's
    /// client code) was instantiating Swift metadata for the first time at that instant, the child finds that
    /// runtime lock taken for ever and hangs in its first use of the same type — observed under TSan, where
    /// everything is slow enough to hit the window. Warming these paths up first leaves the other threads
    /// nothing to initialise while the server forks.
    static func warmUpForForking() {
        _ = warmedUp
    }

    private static let warmedUp: Void = {
        do {
            try warmUpStreamPaths()
            try warmUpDatagramPaths()
            let server = try TCPServer(.loopback(), handler: LineEchoHandler.self, mode: ThreadingMode())
            try withServing(server) { server throws in
                _ = try concurrentRoundTrips(to: server.serverAddress, count: 2)
            }
        } catch {
            Issue.record("warming up for the forking tests failed: \(error)")
        }
    }()

    private static func warmUpStreamPaths() throws {
        for handler in [ProcessEchoHandler.self, HoldingHandler.self, SlowEchoHandler.self] as [BaseRequestHandler.Type] {
            let server = try TCPServer(.loopback(), handler: handler)
            server.logger = Logger(label: "warm-up") { _ in SwiftLogNoOpLogHandler() }
            defer { server.serverClose() }
            for line in ["hold\n", "fail\n"] {
                let client = try TestClient(connectingTo: server.serverAddress)
                defer { client.close() }
                try client.send(line)
                try client.send("bye\n")
                try server.handleRequest()
                _ = try? client.readLine()
                _ = try? client.readToEnd()
                _ = pid_t(try client.readLine().dropLast())
                _ = try client.readLine().split(separator: " ", maxSplits: 2).map { pid_t($0) }
            }
        }
    }

    private static func warmUpDatagramPaths() throws {
        let server = try UDPServer(.loopback(), handler: ProcessDatagramEchoHandler.self)
        defer { server.serverClose() }
        let client = try Socket(family: .inet, type: .datagram)
        defer { client.close() }
        client.timeout = .seconds(5)
        try client.send(Array("warm".utf8), to: server.serverAddress)
        try server.handleRequest()
        var replies: [[UInt8]] = []
        replies.append(try client.receiveFrom(maxLength: 1024).0)
        var pids = Set<Substring>()
        for (index, reply) in replies.enumerated() {
            let fields = String(decoding: reply, as: UTF8.self).split(separator: " ")
            if let pid = fields.first, fields.last == "warm\(index)" { pids.insert(pid) }
        }
    }

    /// Starts a `HoldingHandler` request on each of `count` fresh connections and reads every first reply
    /// before ending any request: every handler is then running at once, which a server that does not
    /// overlap requests cannot show however fast it is (its second reply never comes, and the read times
    /// out). Ends the requests and returns the process ids that replied.
    static func heldRequestsOverlap(at address: SocketAddress, count: Int) throws -> [pid_t] {
        var clients: [TestClient] = []
        defer { for client in clients { client.close() } }
        for _ in 0..<count { clients.append(try TestClient(connectingTo: address)) }
        var pids: [pid_t] = []
        for client in clients {
            try client.send("hold\n")
            pids.append(pid_t(try client.readLine().dropLast()) ?? -1)
        }
        for client in clients {
            try client.send("bye\n")
            #expect(try client.readLine() == "bye\n")
        }
        return pids
    }

    /// Sends `line` on fresh connections to `address`, all at once, and returns the replies in order.
    /// Used to show requests overlap (or do not).
    static func concurrentRoundTrips(to address: SocketAddress, count: Int, line: String = "slow\n") throws -> [String] {
        var clients: [TestClient] = []
        defer { for client in clients { client.close() } }
        for _ in 0..<count { clients.append(try TestClient(connectingTo: address)) }
        for client in clients { try client.send(line) }
        return try clients.map { try $0.readLine() }
    }
}

/// Descriptors, threads and child processes of the test process, to show a server left none behind.
struct ResourceSnapshot {
    let descriptors: Int
    let threads: Int
    let children: Set<pid_t>

    init() {
        descriptors = Self.descriptorCount()
        threads = Self.threadCount()
        children = Self.childProcesses()
    }

    /// The descriptors this process has open, less libdispatch's timer descriptors: it creates one per timer
    /// bucket on first use (a `Task.sleep` of a length not slept before, as a handler's 60 s sleep that is
    /// cancelled) and keeps it for the process's life, which made the async datagram shutdown test see one
    /// "left behind" in about one run of ten under ThreadSanitizer. Nothing in the library creates a timerfd
    /// (libevent's timers use the epoll timeout).
    static func descriptorCount() -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return -1 }
        return names.filter { name in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(name)")) != "anon_inode:[timerfd]"
        }.count
    }

    /// The number of threads in this process.
    static func threadCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? -1
    }

    /// Every live or zombie child of any thread of this process.
    static func childProcesses() -> Set<pid_t> {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        var children = Set<pid_t>()
        for task in tasks {
            guard let text = try? String(contentsOfFile: "/proc/self/task/\(task)/children", encoding: .utf8) else {
                continue
            }
            for field in text.split(separator: " ") {
                if let pid = pid_t(field.trimmingCharacters(in: .whitespacesAndNewlines)) { children.insert(pid) }
            }
        }
        return children
    }

    /// Expects the process to be back to this snapshot (threads and descriptors may take a moment to go:
    /// a detached thread exits just after its last line). Waits at most 5 s.
    func expectNothingLeft(sourceLocation: SourceLocation = #_sourceLocation) {
        var now = ResourceSnapshot()
        _ = eventually(within: .seconds(5)) {
            now = ResourceSnapshot()
            return now.descriptors <= descriptors && now.threads <= threads && now.children.isSubset(of: children)
        }
        #expect(now.descriptors <= descriptors, "descriptors left behind", sourceLocation: sourceLocation)
        #expect(now.threads <= threads, "threads left behind", sourceLocation: sourceLocation)
        #expect(now.children.isSubset(of: children), "child processes left behind", sourceLocation: sourceLocation)
    }
}

/// A one-way latch handlers wait on, opened by the test. Bounded: a handler waits at most 10 s.
final class TestGate: Sendable {
    private let isOpen = Atomic(false)
    private let arrivals = Atomic(0)

    func reset() {
        isOpen.store(false, ordering: .sequentiallyConsistent)
        arrivals.store(0, ordering: .sequentiallyConsistent)
    }

    func open() { isOpen.store(true, ordering: .sequentiallyConsistent) }

    var isOpened: Bool { isOpen.load(ordering: .sequentiallyConsistent) }

    /// How many handlers have reached `wait()`.
    var waiting: Int { arrivals.load(ordering: .sequentiallyConsistent) }

    func wait() {
        arrivals.add(1, ordering: .sequentiallyConsistent)
        _ = eventually(within: .seconds(10)) { isOpen.load(ordering: .sequentiallyConsistent) }
    }
}

/// Reads a line, takes 200 ms, echoes it.
final class SlowEchoHandler: StreamRequestHandler {
    static let delay = Duration.milliseconds(200)
    override func handle() throws {
        let line = try rfile.readLine()
        pause(Self.delay)
        try wfile.write(line)
    }
}

/// Reads a line, waits at `gate`, echoes the line.
final class GatedEchoHandler: StreamRequestHandler {
    static let gate = TestGate()
    override func handle() throws {
        let line = try rfile.readLine()
        Self.gate.wait()
        try wfile.write(line)
    }
}

/// Replies `"<pid> <listener fd> <line>"`, so a test sees which process handled it and whether that process
/// still had the listening socket.
final class ProcessEchoHandler: StreamRequestHandler {
    override func handle() throws {
        let line = try rfile.readLineString()
        try wfile.write("\(getpid()) \(server.fileDescriptor) \(line)")
    }
}

/// Replies `"<pid> <payload>"` to a datagram.
final class ProcessDatagramEchoHandler: DatagramRequestHandler {
    override func handle() throws {
        try wfile.write("\(getpid()) ")
        try wfile.write(packet)
    }
}

/// A forking-friendly hold: replies `"<pid>\n"` to the first line, then waits for a second line from the
/// client (which lives in the test process) before replying `"bye\n"` and exiting. Throws on `"fail"`.
final class HoldingHandler: StreamRequestHandler {
    struct Failure: Error {}
    override func handle() throws {
        let first = try rfile.readLineString()
        if first == "fail\n" { throw Failure() }
        try wfile.write("\(getpid())\n")
        _ = try rfile.readLine()
        try wfile.write("bye\n")
    }
}

/// A TCP server with any mode that counts the connections it accepted (on the serving thread, in the
/// parent process).
final class AcceptCountingServer: TCPServer, @unchecked Sendable {
    private let acceptedCount = Atomic(0)
    private let tickCount = Atomic(0)
    private let requestSinceLastActions = Atomic(false)
    var accepted: Int { acceptedCount.load(ordering: .sequentiallyConsistent) }

    override func getRequest() throws -> (Request, SocketAddress) {
        requestSinceLastActions.store(true, ordering: .sequentiallyConsistent)
        let request = try super.getRequest()
        acceptedCount.add(1, ordering: .sequentiallyConsistent)
        return request
    }

    /// Counts the calls made by the poll-interval ticker (one per loop iteration at most), not those that
    /// follow a request.
    override func serviceActions() {
        super.serviceActions()
        if !requestSinceLastActions.exchange(false, ordering: .sequentiallyConsistent) {
            tickCount.add(1, ordering: .sequentiallyConsistent)
        }
    }

    /// Waits until `serveForever`'s loop has surely run a whole iteration that began after this call, so a
    /// connection already in the backlog would have been accepted by now if the listener were enabled; false
    /// when the loop stopped ticking (for 10 s).
    ///
    /// The ticker fires at most once per loop iteration. The first tick counted may come from an iteration
    /// that polled before this call; the second comes from a later iteration, which polled after it but may
    /// run the listener's callback after the tick; the third comes later still, so that iteration has
    /// finished. Unlike a sleep, this cannot pass early on a slow machine.
    func waitForLoopToPassTheBacklog() -> Bool {
        let start = tickCount.load(ordering: .sequentiallyConsistent)
        return eventually { tickCount.load(ordering: .sequentiallyConsistent) >= start + 3 }
    }
}

extension ModeTest {
    /// Runs `body` (a `serverClose()` or `shutdown()` that must wait for a handler held at `gate`) and opens
    /// the gate from another thread once `window` has passed since `body` began; returns whether `body`
    /// returned before the gate opened, which a call that waits cannot do. (A machine slow enough to stall
    /// `body` for the whole window could hide a call that does not wait, never fail one that does.)
    static func returnedBeforeGateOpened(
        _ gate: TestGate,
        window: Duration = .milliseconds(300),
        _ body: () -> Void
    ) throws -> Bool {
        let started = TestGate()
        let returned = EventFlag()
        let returnedEarly = EventFlag()
        let opener = try OSThread {
            started.wait()
            pause(window)
            if returned.isSet { returnedEarly.set() }
            gate.open()
        }
        started.open()
        body()
        returned.set()
        opener.join()
        return returnedEarly.isSet
    }
}

/// Collects what `ForkingMode` reports about exited children.
final class ChildExitLog: Sendable {
    private let exits = SanitizedMutex<[ChildExit]>([])
    func record(_ exit: ChildExit) { exits.withLock { $0.append(exit) } }
    var all: [ChildExit] { exits.withLock { $0 } }
}

/// Turns a hung forked child into a test failure instead of a hung suite: after `limit`, kills every child
/// process of the test process (a blocking `serverClose()` then reaps them and returns). Also warms up, as
/// every forking test must (see `ModeTest.warmUpForForking`). Create it before taking a `ResourceSnapshot`.
///
/// Its thread sleeps in one blocking wait, never running Swift code while the server forks.
final class ForkWatchdog: Sendable {
    private let stopped = DispatchSemaphore(value: 0)
    private let thread: OSThread

    init(limit: Duration = .seconds(60), sourceLocation: SourceLocation = #_sourceLocation) throws {
        ModeTest.warmUpForForking()
        let stopped = self.stopped
        let deadline = DispatchTime.now() + .milliseconds(Int(limit.components.seconds * 1000))
        thread = try OSThread {
            guard stopped.wait(timeout: deadline) == .timedOut else { return }
            let hung = ResourceSnapshot.childProcesses()
            for pid in hung { kill(pid, SIGKILL) }
            Issue.record("forked children still running after \(limit), killed: \(hung.sorted())", sourceLocation: sourceLocation)
        }
    }

    func stop() {
        stopped.signal()
        thread.join()
    }
}
