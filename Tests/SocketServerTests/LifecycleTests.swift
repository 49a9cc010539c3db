import Dispatch
import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

/// Waits for `condition` with a bound, polling every 5 ms; returns whether it held.
private func waitFor(within limit: Duration = .seconds(20), _ condition: () -> Bool) -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while clock.now < deadline {
        if condition() { return true }
        pause(.milliseconds(5))
    }
    return condition()
}

/// Runs `body` on a thread and waits for it with a bound, so that a regression that blocks fails the test
/// instead of hanging the suite. Returns what `body` returned, or nil when it did not finish in time (the
/// thread is then left to finish on its own).
private func runBounded<T: Sendable>(within limit: Duration = .seconds(20), _ body: @escaping @Sendable () -> T) throws -> T? {
    let result = SanitizedMutex<T?>(nil)
    let done = DispatchSemaphore(value: 0)
    let thread = try OSThread {
        let value = body()
        result.withLock { $0 = value }
        done.signal()
    }
    let seconds = Int(limit.components.seconds)
    guard done.wait(timeout: .now() + .seconds(seconds)) == .success else { return nil }
    thread.join()
    return result.withLock { $0 }
}

private func quietLogger() -> Logger {
    Logger(label: "lifecycle-test") { _ in SwiftLogNoOpLogHandler() }
}

/// The outcome of a throwing call, as a `Sendable` value a test can compare.
enum LifecycleOutcome: Sendable, Equatable {
    case returned
    case threw(String)

    init(_ body: () throws -> Void) {
        do {
            try body()
            self = .returned
        } catch {
            self = .threw("\(error)")
        }
    }
}

private let closedMessage = "\(SocketServerError.serverClosed)"

/// Tells the serving server to close from inside a synchronous handler (the serving thread itself).
final class ClosingHandler: StreamRequestHandler {
    override func handle() throws {
        _ = try rfile.readLine()
        server.serverClose()
        try wfile.write("closing\n")
    }
}

enum LifecycleModeKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sync, threading, pool, event

    var testDescription: String { rawValue }

    func makeServer() throws -> TCPServer {
        switch self {
        case .sync: try TCPServer(.loopback(), handler: LineEchoHandler.self)
        case .threading: try TCPServer(.loopback(), handler: LineEchoHandler.self, mode: ThreadingMode())
        case .pool: try TCPServer(.loopback(), handler: LineEchoHandler.self, mode: ThreadPoolMode(workers: 2))
        case .event:
            try TCPServer(
                .loopback(), eventHandler: EventLineEcho.self,
                configuration: .init(loops: 2, shutdownTimeout: .seconds(5))
            )
        }
    }
}

@Suite("Server life cycle", .serialized)
struct LifecycleTests {
    @Test("states follow the server's life: created, bound, serving, bound, closed")
    func statesFollowTheServersLife() throws {
        let server = try TCPServer(.loopback(), handler: LineEchoHandler.self, bindAndActivate: false)
        #expect(server.lifecycleState == .created)
        try server.serverBind()
        try server.serverActivate()
        #expect(server.lifecycleState == .bound)
        let thread = try OSThread { try? server.serveForever(pollInterval: .milliseconds(50)) }
        #expect(waitFor { server.lifecycleState == .serving })
        server.shutdown()
        thread.join()
        #expect(server.lifecycleState == .bound)
        server.serverClose()
        #expect(server.lifecycleState == .closed)
    }

    @Test("serveForever and handleRequest after serverClose throw serverClosed at once, in every mode")
    func servingAfterCloseThrows() throws {
        for kind in LifecycleModeKind.allCases {
            let server = try kind.makeServer()
            server.serverClose()
            let outcomes = try runBounded {
                [LifecycleOutcome { try server.serveForever() }, LifecycleOutcome { try server.handleRequest() }]
            }
            #expect(outcomes == [.threw(closedMessage), .threw(closedMessage)], "\(kind)")
        }
        let udp = try UDPServer(.loopback(), handler: DatagramEchoHandler.self)
        udp.serverClose()
        let outcome = try runBounded { LifecycleOutcome { try udp.handleRequest() } }
        #expect(outcome == .threw(closedMessage))
    }

    @Test("a second serveForever while one runs throws alreadyServing")
    func secondServeForeverThrows() throws {
        let server = try TCPServer(.loopback(), handler: LineEchoHandler.self)
        let thread = try OSThread { try? server.serveForever(pollInterval: .milliseconds(50)) }
        #expect(waitFor { server.isServing })
        let outcome = LifecycleOutcome { try server.serveForever() }
        #expect(outcome == .threw("\(SocketServerError.alreadyServing)"))
        server.shutdown()
        thread.join()
        server.serverClose()
    }

    @Test("serverClose while serveForever runs stops serving first", arguments: LifecycleModeKind.allCases)
    func serverCloseWhileServing(kind: LifecycleModeKind) throws {
        let before = ResourceSnapshot()
        let server = try kind.makeServer()
        let returned = Atomic(false)
        let thread = try OSThread {
            try? server.serveForever(pollInterval: .seconds(30))
            returned.store(true, ordering: .sequentiallyConsistent)
        }
        #expect(waitFor { server.isServing })
        let client = try TestClient(connectingTo: server.serverAddress)
        try client.send("ping\n")
        #expect(try client.readLine() == "ping\n")
        client.close()
        let closed: Void? = try runBounded { server.serverClose() }
        #expect(closed != nil, "serverClose returned")
        #expect(!server.isServing, "serving had stopped before serverClose returned")
        #expect(waitFor { returned.load(ordering: .sequentiallyConsistent) })
        thread.join()
        #expect(server.lifecycleState == .closed)
        #expect(server.fileDescriptor == -1)
        before.expectNothingLeft()
    }

    @Test("serverClose from two threads at once, and twice, is safe", arguments: LifecycleModeKind.allCases)
    func concurrentServerClose(kind: LifecycleModeKind) throws {
        let before = ResourceSnapshot()
        for _ in 0..<10 {
            let server = try kind.makeServer()
            let thread = try OSThread { try? server.serveForever(pollInterval: .seconds(30)) }
            #expect(waitFor { server.isServing })
            // Start the event loops (event mode) with a connection.
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("x\n")
            _ = try client.readLine()
            client.close()
            let start = DispatchSemaphore(value: 0)
            let closers = try (0..<2).map { _ in
                try OSThread {
                    start.wait()
                    server.serverClose()
                    #expect(server.lifecycleState == .closed, "a second serverClose returns only once closed")
                }
            }
            start.signal()
            start.signal()
            for closer in closers { closer.join() }
            server.serverClose()
            thread.join()
            #expect(server.lifecycleState == .closed)
        }
        before.expectNothingLeft()
    }

    @Test("serverClose from the serving thread (a synchronous handler) closes once serveForever returns")
    func serverCloseFromTheServingThread() throws {
        let server = try TCPServer(.loopback(), handler: ClosingHandler.self)
        let thread = try OSThread { try? server.serveForever(pollInterval: .seconds(30)) }
        #expect(waitFor { server.isServing })
        let client = try TestClient(connectingTo: server.serverAddress)
        try client.send("close\n")
        #expect(try client.readLine() == "closing\n")
        client.close()
        #expect(waitFor { server.lifecycleState == .closed })
        thread.join()
        #expect(server.fileDescriptor == -1)
    }

    @Test("serverClose wakes a handleRequest that waits without a timeout, which then throws serverClosed")
    func serverCloseWakesHandleRequest() throws {
        let server = try TCPServer(.loopback(), handler: LineEchoHandler.self)
        let outcome = SanitizedMutex<LifecycleOutcome?>(nil)
        let thread = try OSThread {
            let result = LifecycleOutcome { try server.handleRequest() }
            outcome.withLock { $0 = result }
        }
        #expect(waitFor { server.lifecycleState == .serving })
        let closed: Void? = try runBounded { server.serverClose() }
        #expect(closed != nil)
        thread.join()
        #expect(outcome.withLock { $0 } == .threw(closedMessage))
    }

    @Test("a server dropped without serverClose releases what its mode holds", arguments: LifecycleModeKind.allCases)
    func droppedServerReleasesItsMode(kind: LifecycleModeKind) throws {
        let before = ResourceSnapshot()
        weak var dropped: TCPServer?
        try {
            let server = try kind.makeServer()
            dropped = server
            let thread = try OSThread { try? server.serveForever(pollInterval: .milliseconds(50)) }
            #expect(waitFor { server.isServing })
            for _ in 0..<4 {
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("hello\n")
                #expect(try client.readLine() == "hello\n")
                client.close()
            }
            server.shutdown()
            thread.join()
        }()
        // A handler thread or pool job may still hold the server for a moment after its reply was sent.
        #expect(waitFor { dropped == nil }, "nothing keeps the server alive once its requests are done")
        before.expectNothingLeft()
    }

    @Test("an event-mode server with open connections can be dropped; its connections are closed")
    func droppedEventServerWithOpenConnections() throws {
        let before = ResourceSnapshot()
        weak var dropped: TCPServer?
        var clients: [TestClient] = []
        try {
            let server = try TCPServer(
                .loopback(), eventHandler: EventLineEcho.self,
                configuration: .init(loops: 2, shutdownTimeout: .milliseconds(100))
            )
            server.logger = quietLogger()
            dropped = server
            let thread = try OSThread { try? server.serveForever(pollInterval: .milliseconds(50)) }
            #expect(waitFor { server.isServing })
            for _ in 0..<4 {
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("open\n")
                #expect(try client.readLine() == "open\n")
                clients.append(client)
            }
            server.shutdown()
            thread.join()
        }()
        #expect(dropped == nil, "open connections do not keep the server alive")
        for client in clients {
            #expect(try client.readToEnd() == "", "the connection was closed by the server")
            client.close()
        }
        before.expectNothingLeft()
    }

    @Test("an EventLoopGroup dropped without shutdown stops its threads")
    func droppedEventLoopGroup() throws {
        let before = ResourceSnapshot()
        try {
            let group = try EventLoopGroup(count: 3, name: "dropped")
            let ran = Atomic(0)
            for loop in group.loops {
                #expect(loop.execute { ran.add(1, ordering: .sequentiallyConsistent) })
            }
            #expect(waitFor { ran.load(ordering: .sequentiallyConsistent) == 3 })
        }()
        before.expectNothingLeft()
    }

    @Test("a stopped loop runs every task it accepted and refuses later ones")
    func stoppedLoopRunsAcceptedTasks() throws {
        let group = try EventLoopGroup(count: 1, name: "stopping")
        let loop = group.loops[0]
        let ran = Atomic(0)
        let blocker = DispatchSemaphore(value: 0)
        #expect(loop.execute { blocker.wait() })
        for _ in 0..<100 {
            #expect(loop.execute { ran.add(1, ordering: .sequentiallyConsistent) })
        }
        let stopper = try OSThread { group.shutdown() }
        #expect(waitFor { loop.isStopped })
        #expect(!loop.execute { ran.add(1_000, ordering: .sequentiallyConsistent) }, "refused once stopping")
        blocker.signal()
        stopper.join()
        #expect(ran.load(ordering: .sequentiallyConsistent) == 100)
    }

    @Test("handlers that do not fit the server are rejected when it is created")
    func mismatchedHandlersAreRejected() throws {
        let before = ResourceSnapshot()
        #expect(throws: SocketServerError.self) {
            _ = try TCPServer(.loopback(), eventHandler: EventDatagramEcho.self)
        }
        #expect(throws: SocketServerError.self) {
            _ = try UDPServer(.loopback(), eventHandler: EventLineEcho.self)
        }
        #expect(throws: SocketServerError.self) {
            _ = try UDPServer(.loopback(), handler: LineEchoHandler.self)
        }
        #expect(throws: SocketServerError.self) {
            _ = try TCPServer(.loopback(), handler: DatagramEchoHandler.self)
        }
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        #expect(throws: SocketServerError.self) {
            _ = try UnixDatagramServer(try directory.socketAddress("d"), handler: LineEchoHandler.self)
        }
        // The fitting combinations still work.
        try TCPServer(.loopback(), eventHandler: EventLineEcho.self).serverClose()
        try UDPServer(.loopback(), eventHandler: EventDatagramEcho.self).serverClose()
        before.expectNothingLeft()
    }
}

/// A job queue on its own thread, standing in for blocking work (a database call) done off the loop.
final class OffLoopJobs: Sendable {
    let pending = SanitizedMutex<[EventConnection.Handle]>([])
    let results = SanitizedMutex<[Bool]>([])

    func add(_ handle: EventConnection.Handle) { pending.withLock { $0.append(handle) } }

    /// Answers every pending connection through its handle; records what `execute` returned.
    func answerAll(_ reply: String) {
        let handles = pending.withLock { handles -> [EventConnection.Handle] in
            let taken = handles
            handles.removeAll()
            return taken
        }
        for handle in handles {
            let accepted = handle.execute { connection in
                connection.write(reply)
                connection.close()
            }
            results.withLock { $0.append(accepted) }
        }
    }
}

/// Hands each received line's connection to `jobs`, which answers later from another thread.
final class DeferredAnswerHandler: EventStreamHandler {
    nonisolated(unsafe) static var jobs: OffLoopJobs?

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        guard input.readLine() != nil else { return }
        Self.jobs?.add(connection.handle)
    }
}

@Suite("EventConnection.Handle across the server's life", .serialized)
struct EventConnectionHandleTests {
    private func makeServer(shutdownTimeout: Duration) throws -> TCPServer {
        let server = try TCPServer(
            .loopback(), eventHandler: DeferredAnswerHandler.self,
            configuration: .init(loops: 2, shutdownTimeout: shutdownTimeout)
        )
        server.logger = quietLogger()
        return server
    }

    @Test("a job answers through the handle while serving and while serverClose drains")
    func handleAnswersWhileServingAndDraining() throws {
        let jobs = OffLoopJobs()
        DeferredAnswerHandler.jobs = jobs
        defer { DeferredAnswerHandler.jobs = nil }
        let server = try makeServer(shutdownTimeout: .seconds(30))
        let thread = try OSThread { try? server.serveForever(pollInterval: .milliseconds(50)) }
        #expect(waitFor { server.isServing })

        let first = try TestClient(connectingTo: server.serverAddress)
        try first.send("q\n")
        #expect(waitFor { jobs.pending.withLock { $0.count } == 1 })
        jobs.answerAll("served\n")
        #expect(try first.readLine() == "served\n")

        let second = try TestClient(connectingTo: server.serverAddress)
        try second.send("q\n")
        #expect(waitFor { jobs.pending.withLock { $0.count } == 1 })
        server.shutdown()
        thread.join()
        // serverClose waits for the open connection; the job answers meanwhile, from another thread.
        let closer = try OSThread { server.serverClose() }
        #expect(waitFor { server.lifecycleState == .closing })
        jobs.answerAll("drained\n")
        #expect(try second.readLine() == "drained\n")
        closer.join()
        #expect(jobs.results.withLock { $0 } == [true, true])
        first.close()
        second.close()
    }

    @Test("a handle used after serverClose returned reports false and touches no freed memory")
    func handleAfterServerClose() throws {
        let before = ResourceSnapshot()
        let jobs = OffLoopJobs()
        DeferredAnswerHandler.jobs = jobs
        defer { DeferredAnswerHandler.jobs = nil }
        var clients: [TestClient] = []
        try {
            let server = try makeServer(shutdownTimeout: .milliseconds(50))
            let thread = try OSThread { try? server.serveForever(pollInterval: .milliseconds(50)) }
            #expect(waitFor { server.isServing })
            for _ in 0..<4 {
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("q\n")
                clients.append(client)
            }
            #expect(waitFor { jobs.pending.withLock { $0.count } == 4 })
            server.shutdown()
            thread.join()
            // The shutdown deadline expires with the jobs unanswered: the connections are closed.
            server.serverClose()
        }()
        for client in clients {
            #expect(try client.readToEnd() == "")
            client.close()
        }
        // Long after the deadline, with the server gone, a blocking job finishes and answers.
        let answered: Void? = try runBounded { jobs.answerAll("too late\n") }
        #expect(answered != nil)
        #expect(jobs.results.withLock { $0 } == [false, false, false, false])
        before.expectNothingLeft()
    }
}

@Suite(
    "Forking mode waits for whichever child exits first",
    .serialized,
    .disabled(if: ModeTest.underThreadSanitizer, ModeTest.forkingUnderSanitizerReason)
)
struct ForkingRoomTests {
    @Test("at maxChildren, handleRequest goes on as soon as any of its children exits")
    func waitsForTheFirstChildToExit() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let mode = ForkingMode(maxChildren: 5)
        let server = try TCPServer(.loopback(), handler: HoldingHandler.self, mode: mode)
        server.logger = quietLogger()
        // Four children hold their connections until the test sends a second line.
        var holders: [TestClient] = []
        for _ in 0..<4 {
            let client = try TestClient(connectingTo: server.serverAddress, timeout: .seconds(60))
            try client.send("hold\n")
            try server.handleRequest()
            _ = try client.readLine()
            holders.append(client)
        }
        // The fifth finishes at once: "fail" makes the handler throw, so the child exits with status 1.
        let quick = try TestClient(connectingTo: server.serverAddress, timeout: .seconds(60))
        try quick.send("fail\n")
        try server.handleRequest()
        #expect(try quick.readToEnd() == "")
        quick.close()
        #expect(mode.activeChildren.count == 5)

        // At the cap: the next request waits for a child, and the quick one has exited.
        let next = try TestClient(connectingTo: server.serverAddress, timeout: .seconds(60))
        try next.send("hold\n")
        let handled = try runBounded(within: .seconds(30)) { LifecycleOutcome { try server.handleRequest() } }
        #expect(handled == .returned, "handleRequest went on while the holding children still run")
        if handled != nil {
            _ = try next.readLine()
            try next.send("bye\n")
            #expect(try next.readLine() == "bye\n")
        }
        next.close()
        for holder in holders {
            try holder.send("bye\n")
            _ = try? holder.readLine()
            holder.close()
        }
        server.serverClose()
        #expect(mode.activeChildren.isEmpty)
        before.expectNothingLeft()
    }
}
