import Foundation
import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// Helpers shared by the concurrency-mode tests (threading, forking, pool, named servers).
enum ModeTest {
    /// Sleeps the calling thread.
    static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }

    /// Polls `condition` every 5 ms until it holds or `limit` passes; returns whether it held.
    static func waitUntil(within limit: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while clock.now < deadline {
            if condition() { return true }
            sleep(.milliseconds(5))
        }
        return condition()
    }

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

    /// Whether the test binary runs under ThreadSanitizer (`swift test --sanitize=thread`).
    static let underThreadSanitizer: Bool = {
        guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return false }
        return maps.contains("libclang_rt.tsan")
    }()

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
        descriptors = openDescriptorCount()
        threads = Self.threadCount()
        children = Self.childProcesses()
    }

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
        _ = ModeTest.waitUntil(within: .seconds(5)) {
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
        _ = ModeTest.waitUntil(within: .seconds(10)) { isOpen.load(ordering: .sequentiallyConsistent) }
    }
}

/// Reads a line, takes 200 ms, echoes it.
final class SlowEchoHandler: StreamRequestHandler {
    static let delay = Duration.milliseconds(200)
    override func handle() throws {
        let line = try rfile.readLine()
        ModeTest.sleep(Self.delay)
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
    var accepted: Int { acceptedCount.load(ordering: .sequentiallyConsistent) }

    override func getRequest() throws -> (Request, SocketAddress) {
        let request = try super.getRequest()
        acceptedCount.add(1, ordering: .sequentiallyConsistent)
        return request
    }
}

/// Collects what `ForkingMode` reports about exited children.
final class ChildExitLog: Sendable {
    private let exits = Mutex<[ChildExit]>([])
    func record(_ exit: ChildExit) { exits.withLock { $0.append(exit) } }
    var all: [ChildExit] { exits.withLock { $0 } }
}
