import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

/// Counts every `ServerObserver` event, for the observation tests.
final class CountingObserver: ServerObserver {
    struct Counts: Sendable {
        var accepted = 0
        var rejected: [ConnectionRejection: Int] = [:]
        var closed = 0
        var bytesReceived = 0
        var bytesSent = 0
        var started = 0
        var finished = 0
        var errors: [String] = []
        var queueDepths: [Int] = []
        var children: [Int] = []
        var ticks = 0
    }

    private let state = SanitizedMutex(Counts())
    var counts: Counts { state.withLock { $0 } }

    func connectionAccepted() { state.withLock { $0.accepted += 1 } }
    func connectionRejected(_ reason: ConnectionRejection) { state.withLock { $0.rejected[reason, default: 0] += 1 } }
    func connectionClosed(duration: Duration, bytesReceived: Int?, bytesSent: Int?) {
        state.withLock {
            $0.closed += 1
            $0.bytesReceived += bytesReceived ?? 0
            $0.bytesSent += bytesSent ?? 0
        }
    }
    func requestStarted() { state.withLock { $0.started += 1 } }
    func requestFinished(duration: Duration, error: (any Error)?) {
        state.withLock {
            $0.finished += 1
            if let error { $0.errors.append(String(describing: type(of: error))) }
        }
    }
    func threadPoolQueueDepthChanged(_ depth: Int) { state.withLock { $0.queueDepths.append(depth) } }
    func childProcessesChanged(_ count: Int) { state.withLock { $0.children.append(count) } }
    func loopTicked(duration: Duration) { state.withLock { $0.ticks += 1 } }
}

/// Echoes lines; a line `fail` makes the handler throw.
final class FailingLineEcho: StreamRequestHandler {
    struct Refused: Error {}

    override func handle() throws {
        while true {
            let line = try rfile.readLine()
            if line.isEmpty { return }
            if line == Array("fail\n".utf8) { throw Refused() }
            try wfile.write(line)
        }
    }
}

/// Echoes one line and returns; throws on the line `fail`.
final class OneLineOrFail: StreamRequestHandler {
    override func handle() throws {
        let line = try rfile.readLine()
        if line == Array("fail\n".utf8) { throw FailingLineEcho.Refused() }
        try wfile.write(line)
    }
}

/// Echoes one line, then parks the connection for its next one.
final class ParkingLineEcho: StreamRequestHandler {
    override func handle() throws {
        let line = try rfile.readLine()
        if line.isEmpty { return }
        try wfile.write(line)
        _ = parkConnection(idleTimeout: .seconds(10))
    }
}

/// Refuses every client in `verifyRequest`.
final class RefusingServer: TCPServer, @unchecked Sendable {
    override func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool { false }
}

@Suite("Server observation", .serialized)
struct ObservationTests {
    /// Two echoed clients and one whose handler throws, in `mode`; returns what the observer saw.
    private func exercise(_ mode: any ConcurrencyMode) throws -> CountingObserver.Counts {
        let observer = CountingObserver()
        let server = try TCPServer(.loopback(), handler: FailingLineEcho.self, mode: mode)
        server.logger = Logger(label: "observation-test") { _ in SwiftLogNoOpLogHandler() }
        server.observer = observer
        try withServing(server) { server throws in
            for _ in 0..<2 {
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("hello\n")
                #expect(try client.readLine() == "hello\n")
                client.close()
            }
            let failing = try TestClient(connectingTo: server.serverAddress)
            try failing.send("fail\n")
            #expect(try failing.readToEnd() == "")
            failing.close()
            #expect(eventually { observer.counts.finished == 3 && observer.counts.closed == 3 })
        }
        return observer.counts
    }

    private func expectBlockingCounts(_ counts: CountingObserver.Counts) {
        #expect(counts.accepted == 3)
        #expect(counts.closed == 3)
        #expect(counts.started == 3)
        #expect(counts.finished == 3)
        #expect(counts.errors == ["Refused"])
        // What the readers and writers moved: two `hello\n` each way, and `fail\n` in.
        #expect(counts.bytesReceived == 6 + 6 + 5 && counts.bytesSent == 6 + 6, "\(counts)")
        #expect(counts.ticks >= 3, "one tick per accept at least")
        #expect(counts.rejected.isEmpty)
    }

    @Test func synchronousModeReportsConnectionsAndRequests() throws {
        expectBlockingCounts(try exercise(SynchronousMode()))
    }

    @Test func threadingModeReportsConnectionsAndRequests() throws {
        expectBlockingCounts(try exercise(ThreadingMode()))
    }

    @Test func threadPoolReportsItsQueueDepth() throws {
        let counts = try exercise(ThreadPoolMode(workers: 2))
        expectBlockingCounts(counts)
        // Each request is enqueued (depth ≥ 1) and taken out again (depth back to 0).
        #expect(counts.queueDepths.count == 6, "\(counts.queueDepths)")
        #expect(counts.queueDepths.contains { $0 >= 1 } && counts.queueDepths.last == 0)
    }

    @Test(.disabled(if: ModeTest.underThreadSanitizer, ModeTest.forkingUnderSanitizerReason))
    func forkingModeReportsItsChildrenAndTheirRequestsFromTheParent() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let observer = CountingObserver()
        let mode = ForkingMode()
        // One line each, then the child exits (a child holds copies of the test's other client sockets, so
        // it must not wait for end of input).
        let server = try TCPServer(.loopback(), handler: OneLineOrFail.self, mode: mode)
        server.logger = Logger(label: "observation-test") { _ in SwiftLogNoOpLogHandler() }
        server.observer = observer
        try withServing(server) { server throws in
            for _ in 0..<2 {
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("hello\n")
                #expect(try client.readLine() == "hello\n")
                client.close()
            }
            let failing = try TestClient(connectingTo: server.serverAddress)
            try failing.send("fail\n")
            #expect(try failing.readToEnd() == "")
            failing.close()
            #expect(eventually { observer.counts.closed == 3 && mode.activeChildren.isEmpty })
        }
        let counts = observer.counts
        #expect(counts.children.count == 6 && counts.children.last == 0, "\(counts.children)")
        #expect(counts.children.allSatisfy { $0 >= 0 && $0 <= 3 })
        // Seen from the parent: a request from fork to reap, a connection from accept to the reap.
        #expect(counts.accepted == 3 && counts.started == 3 && counts.finished == 3 && counts.closed == 3, "\(counts)")
        #expect(counts.errors == ["ChildExit"], "the child whose handler threw exited 1")
        // What the children's readers and writers moved, reported to the parent as they exit (`ChildReport`).
        #expect(counts.bytesReceived == 6 + 6 + 5 && counts.bytesSent == 6 + 6, "\(counts)")
    }

    /// A parked connection is one connection however many handler runs serve it: reported closed once,
    /// when the client goes, with every byte of every run.
    @Test(arguments: ["sync", "threading", "pool"])
    func parkedConnectionIsReportedClosedOnceWithAllItsBytes(mode name: String) throws {
        let mode: any ConcurrencyMode =
            switch name {
            case "sync": SynchronousMode()
            case "threading": ThreadingMode()
            default: ThreadPoolMode(workers: 2)
            }
        try expectParkedConnectionReportedOnce(mode)
    }

    /// The same in forking mode: each request a child, the connection parked in the parent between them.
    @Test(.disabled(if: ModeTest.underThreadSanitizer, ModeTest.forkingUnderSanitizerReason))
    func parkedConnectionInForkingModeIsReportedClosedOnceWithAllItsBytes() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        try expectParkedConnectionReportedOnce(ForkingMode())
    }

    private func expectParkedConnectionReportedOnce(_ mode: any ConcurrencyMode) throws {
        let observer = CountingObserver()
        let server = try TCPServer(.loopback(), handler: ParkingLineEcho.self, mode: mode)
        server.logger = Logger(label: "observation-test") { _ in SwiftLogNoOpLogHandler() }
        server.observer = observer
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            for line in ["one\n", "two\n", "three\n"] {
                try client.send(line)
                #expect(try client.readLine() == line)
            }
            #expect(eventually { observer.counts.finished == 3 })
            #expect(observer.counts.closed == 0, "parked between requests, not closed")
            client.close()
            #expect(eventually { observer.counts.closed == 1 })
        }
        let counts = observer.counts
        #expect(counts.accepted == 1 && counts.started == 3 && counts.closed == 1, "\(counts)")
        #expect(counts.bytesReceived == 14 && counts.bytesSent == 14, "\(counts)")
    }

    @Test func eventModeReportsConnectionsAndBytes() throws {
        let observer = CountingObserver()
        let server = try makeEventServer(EventLineEcho.self)
        server.observer = observer
        try withServing(server) { server throws in
            for _ in 0..<3 {
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("hello\n")
                #expect(try client.readLine() == "hello\n")
                client.close()
            }
            #expect(eventually { observer.counts.closed == 3 })
        }
        let counts = observer.counts
        #expect(counts.accepted == 3 && counts.closed == 3)
        #expect(counts.bytesReceived == 18 && counts.bytesSent == 18)
        // A request in event mode is one `bytesReceived` run: one per client here (its line is one segment).
        #expect(counts.started >= 3 && counts.started == counts.finished, "\(counts)")
    }

    @Test func eventModeAtMaxConnectionsReportsTheRejection() throws {
        let observer = CountingObserver()
        let server = try makeEventServer(EventLineEcho.self, EventMode.Configuration(loops: 1, maxConnections: 1))
        server.observer = observer
        try withServing(server) { server throws in
            let first = try TestClient(connectingTo: server.serverAddress)
            try first.send("one\n")
            #expect(try first.readLine() == "one\n")
            #expect(eventually { observer.counts.rejected[.maxConnections, default: 0] >= 1 })
            // The second waits in the backlog and is served once the first has gone.
            let second = try TestClient(connectingTo: server.serverAddress)
            first.close()
            try second.send("two\n")
            #expect(try second.readLine() == "two\n")
            second.close()
            #expect(eventually { observer.counts.closed == 2 })
        }
        #expect(observer.counts.accepted == 2)
    }

    @Test func verifyRequestRefusalIsReported() throws {
        let observer = CountingObserver()
        let server = try RefusingServer(.loopback(), handler: LineEchoHandler.self)
        server.observer = observer
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            #expect(try client.readToEnd() == "")
            client.close()
            #expect(eventually { observer.counts.rejected[.verifyRequest] == 1 })
        }
        #expect(observer.counts.accepted == 0 && observer.counts.started == 0)
    }
}
