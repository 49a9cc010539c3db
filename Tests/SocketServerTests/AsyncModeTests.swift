import CAllocationCounter
import Dispatch
import Foundation
import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

/// `for try await line in rfile.lines`: echoes every line.
final class AsyncLineEcho: AsyncStreamRequestHandler {
    override func handle() async throws {
        for try await line in rfile.lines { try await wfile.write(line) }
    }
}

/// A request/response protocol: `ADD a b` → the sum, `BYE` → closes; anything else → `ERR`.
final class AsyncCalculator: AsyncStreamRequestHandler {
    override func handle() async throws {
        while true {
            let line = String(decoding: try await rfile.readLine(), as: UTF8.self)
            if line.isEmpty { return }
            let words = line.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            switch words.first {
            case "ADD" where words.count == 3:
                let sum = (Int(words[1]) ?? 0) &+ (Int(words[2]) ?? 0)
                try await wfile.write("\(sum)\n")
            case "BYE":
                try await wfile.write("bye\n")
                return
            default:
                try await wfile.write("ERR\n")
            }
        }
    }
}

/// What the handlers below observed, for the test to check.
final class AsyncObservations: Sendable {
    let threads = SanitizedMutex<[pthread_t]>([])
    let errors = SanitizedMutex<[String]>([])
    let finished = Atomic(0)

    func record(thread: pthread_t) { threads.withLock { $0.append(thread) } }
    func record(error: any Error) { errors.withLock { $0.append("\(error)") } }
}

/// An actor elsewhere that the handler awaits, as a handler would await a database client.
actor Elsewhere {
    private var calls = 0
    func work(_ text: String) -> String {
        calls += 1
        return text.uppercased()
    }
}

/// Records the thread before and after each await (a read, and a call to another actor), then echoes
/// the line upper-cased by the actor.
final class ThreadRecordingHandler: DependentAsyncStreamRequestHandler<AsyncObservations> {
    static let elsewhere = Elsewhere()

    override func handle() async throws {
        dependencies.record(thread: pthread_self())
        let line = try await rfile.readLine()
        dependencies.record(thread: pthread_self())
        let upper = await Self.elsewhere.work(String(decoding: line, as: UTF8.self))
        dependencies.record(thread: pthread_self())
        #expect(context.driver.isOnLoop, "back on the connection's loop after awaiting an actor")
        try await wfile.write(upper)
    }
}

/// Waits for a line that may never come, recording how the wait ended.
final class WaitingHandler: DependentAsyncStreamRequestHandler<AsyncObservations> {
    override func handle() async throws {
        defer { dependencies.finished.add(1, ordering: .sequentiallyConsistent) }
        do {
            _ = try await rfile.readLine()
            _ = try await rfile.readLine()
        } catch {
            dependencies.record(error: error)
            throw error
        }
    }
}

/// Answers `ok` after a short pause spent awaiting elsewhere, so shutdown finds it in flight.
final class SlowAnswerHandler: DependentAsyncStreamRequestHandler<AsyncObservations> {
    override func handle() async throws {
        _ = try await rfile.readLine()
        try await Task.sleep(for: .milliseconds(300))
        try await wfile.write("ok\n")
        dependencies.finished.add(1, ordering: .sequentiallyConsistent)
    }
}

/// Echoes lines; `fail` makes `handle()` throw, for `handleError`.
final class AsyncFailingEcho: AsyncStreamRequestHandler {
    struct Refused: Error, CustomStringConvertible {
        var description: String { "the handler refused the line" }
    }

    override func handle() async throws {
        for try await line in rfile.lines {
            if line == Array("fail\n".utf8) { throw Refused() }
            try await wfile.write(line)
        }
    }
}

/// Records the hooks an async-mode server runs; refuses its second connection in `verifyRequest`.
final class AsyncHookServer: TCPServer, @unchecked Sendable {
    let calls = CallLog()
    private let verified = Atomic(0)

    override func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool {
        verified.add(1, ordering: .sequentiallyConsistent).newValue != 2
    }

    override func handleError(_ error: any Error, clientAddress: SocketAddress) {
        calls.record("handleError \(error)")
    }

    override func shutdownRequest(_ request: Request) {
        calls.record("shutdownRequest")
        super.shutdownRequest(request)
    }
}

private func quietLogger() -> Logger {
    Logger(label: "async-test") { _ in SwiftLogNoOpLogHandler() }
}

@Suite("Async handlers on the event loops", .serialized)
struct AsyncModeTests {
    @Test("echo with `for try await line in rfile.lines`, over TCP and a Unix socket")
    func echo() throws {
        let before = ResourceSnapshot()
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let servers: [TCPServer] = [
            try TCPServer(.loopback(), asyncHandler: AsyncLineEcho.self, configuration: .init(loops: 2)),
            try UnixStreamServer(try directory.socketAddress("async"), asyncHandler: AsyncLineEcho.self),
        ]
        for server in servers {
            try withServing(server) { server in
                let client = try TestClient(connectingTo: server.serverAddress)
                defer { client.close() }
                for index in 0..<50 {
                    try client.send("line \(index)\n")
                    let reply = try client.readLine()
                    #expect(reply == "line \(index)\n")
                }
                try client.send("a\nb\nc\n")
                let replies = [try client.readLine(), try client.readLine(), try client.readLine()]
                #expect(replies == ["a\n", "b\n", "c\n"])
                try client.socket.shutdown(.write)
                let rest = try client.readToEnd()
                #expect(rest == "", "end of input ends `lines`, and the server closes")
            }
        }
        before.expectNothingLeft()
    }

    @Test("a request/response protocol")
    func requestResponse() throws {
        let server = try TCPServer(.loopback(), asyncHandler: AsyncCalculator.self)
        try withServing(server) { server in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            try client.send("ADD 2 40\nNOPE\nADD -1 1\nBYE\n")
            let replies = [try client.readLine(), try client.readLine(), try client.readLine(), try client.readLine()]
            #expect(replies == ["42\n", "ERR\n", "0\n", "bye\n"])
            let rest = try client.readToEnd()
            #expect(rest == "")
        }
    }

    @Test("a read resumes on the loop thread that received the bytes; awaiting an actor comes back to it")
    func staysOnItsLoop() throws {
        let observations = AsyncObservations()
        let server = try TCPServer(
            .loopback(), asyncHandler: ThreadRecordingHandler.self, dependencies: observations,
            configuration: .init(loops: 1))
        try withServing(server) { server in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            #expect(eventually { observations.threads.withLock { $0.count } == 1 }, "the handler waits to read")
            try client.send("hello\n")
            let reply = try client.readLine()
            #expect(reply == "HELLO\n")
        }
        let threads = observations.threads.withLock { $0 }
        #expect(threads.count == 3)
        #expect(Set(threads).count == 1, "every step ran on the same (loop) thread")
        #expect(threads.first.map { pthread_equal($0, pthread_self()) == 0 } == true)
    }

    @Test("a peer that resets makes the pending read throw")
    func resetEndsThePendingRead() throws {
        let observations = AsyncObservations()
        let server = try TCPServer(
            .loopback(), asyncHandler: WaitingHandler.self, dependencies: observations, logger: quietLogger())
        try withServing(server) { server in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("first\n")
            var linger = linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(client.socket.fileDescriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
            #expect(eventually { server.isServing })
            pause(.milliseconds(50))  // lets the first line reach the handler before the reset (either order is fine)
            client.close()
            #expect(eventually { observations.finished.load(ordering: .sequentiallyConsistent) == 1 })
        }
        let errors = observations.errors.withLock { $0 }
        #expect(errors.count == 1)
        #expect(errors.first?.contains("Connection reset") == true || errors.first?.contains("closed") == true)
    }

    @Test("the idle timeout makes the pending read throw")
    func idleTimeoutEndsThePendingRead() throws {
        let observations = AsyncObservations()
        let server = try TCPServer(
            .loopback(), asyncHandler: WaitingHandler.self, dependencies: observations,
            configuration: .init(loops: 1, idleTimeout: .milliseconds(200)), logger: quietLogger())
        try withServing(server) { server in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            #expect(eventually { observations.finished.load(ordering: .sequentiallyConsistent) == 1 })
            let rest = try client.readToEnd()
            #expect(rest == "", "the connection was closed")
        }
        #expect(observations.errors.withLock { $0 } == ["\(EventModeError.idleTimeout)"])
    }

    @Test("shutdown lets handlers in flight finish within shutdownTimeout")
    func shutdownDrainsHandlersInFlight() throws {
        // `Task.sleep` starts Dispatch's timer machinery (a descriptor and threads kept for the process):
        // start it before the snapshot, so that only what the server holds is compared.
        let warmed = DispatchSemaphore(value: 0)
        Task {
            try? await Task.sleep(for: .milliseconds(1))
            warmed.signal()
        }
        warmed.wait()
        let before = ResourceSnapshot()
        let observations = AsyncObservations()
        let server = try TCPServer(
            .loopback(), asyncHandler: SlowAnswerHandler.self, dependencies: observations,
            configuration: .init(loops: 2, shutdownTimeout: .seconds(30)))
        let thread = try OSThread { try? server.serveForever(pollInterval: .milliseconds(50)) }
        #expect(eventually { server.isServing })
        let clients = try (0..<4).map { _ in try TestClient(connectingTo: server.serverAddress) }
        for client in clients { try client.send("go\n") }
        #expect(eventually { eventMode(of: server).connectionCount == 4 }, "every connection accepted")
        server.shutdown()
        thread.join()
        server.serverClose()
        for client in clients {
            let reply = try client.readLine()
            #expect(reply == "ok\n", "answered during the drain")
            client.close()
        }
        #expect(observations.finished.load(ordering: .sequentiallyConsistent) == 4)
        before.expectNothingLeft()
    }

    @Test("at shutdown an idle handler's pending read ends the input, long before shutdownTimeout")
    func shutdownEndsIdleReads() throws {
        let before = ResourceSnapshot()
        let (logger, store) = RecordingLogHandler.makeLogger()
        let server = try TCPServer(
            .loopback(), asyncHandler: AsyncLineEcho.self, configuration: .init(loops: 2, shutdownTimeout: .seconds(30)),
            logger: logger)
        let thread = try OSThread { try? server.serveForever(pollInterval: .milliseconds(50)) }
        #expect(eventually { server.isServing })
        let clients = try (0..<3).map { _ in try TestClient(connectingTo: server.serverAddress) }
        for client in clients {
            try client.send("hi\n")
            let reply = try client.readLine()
            #expect(reply == "hi\n")
        }
        server.shutdown()
        thread.join()
        // Idle handlers see end of input and return; none is closed by the 30 s deadline.
        server.serverClose()
        #expect(!store.all.contains { "\($0.2["socketserver.error"] ?? "")".contains("shutdown deadline") })
        for client in clients {
            let rest = try client.readToEnd()
            #expect(rest == "")
            client.close()
        }
        before.expectNothingLeft()
    }

    @Test("past shutdownTimeout, waiting handlers are cancelled and their connections closed")
    func shutdownPastTheDeadline() throws {
        let before = ResourceSnapshot()
        let observations = AsyncObservations()
        let server = try TCPServer(
            .loopback(), asyncHandler: WaitingHandler.self, dependencies: observations,
            configuration: .init(loops: 2, shutdownTimeout: .milliseconds(100)), logger: quietLogger())
        let thread = try OSThread { try? server.serveForever(pollInterval: .milliseconds(50)) }
        #expect(eventually { server.isServing })
        let clients = try (0..<6).map { _ in try TestClient(connectingTo: server.serverAddress) }
        for client in clients { try client.send("first\n") }
        #expect(eventually { eventMode(of: server).connectionCount == 6 }, "every connection accepted")
        server.shutdown()
        thread.join()
        server.serverClose()
        for client in clients {
            let rest = try client.readToEnd()
            #expect(rest == "")
            client.close()
        }
        #expect(eventually { observations.finished.load(ordering: .sequentiallyConsistent) == 6 })
        #expect(observations.errors.withLock { $0 }.allSatisfy { $0.contains("shutdown deadline") })
        before.expectNothingLeft()
    }

    @Test("1,000 concurrent connections on one loop; the thread count does not grow with them")
    func manyConnectionsOnOneLoop() throws {
        _ = raiseDescriptorLimit(atLeast: 2_300)
        let server = try TCPServer(.loopback(), asyncHandler: AsyncLineEcho.self, configuration: .init(loops: 1))
        try withServing(server) { server in
            var clients: [TestClient] = []
            defer { for client in clients { client.close() } }
            for _ in 0..<10 { clients.append(try TestClient(connectingTo: server.serverAddress)) }
            for client in clients { try client.send("warm\n") }
            for client in clients { _ = try client.readLine() }
            let threadsAtTen = ResourceSnapshot.threadCount()
            for _ in 10..<1_000 { clients.append(try TestClient(connectingTo: server.serverAddress)) }
            for (index, client) in clients.enumerated() { try client.send("\(index)\n") }
            var answered = 0
            for (index, client) in clients.enumerated() where try client.readLine() == "\(index)\n" {
                answered += 1
            }
            #expect(answered == 1_000)
            // 990 more connections, no more threads (two allowed for the test runner's own workers).
            #expect(ResourceSnapshot.threadCount() <= threadsAtTen + 2, "1,000 connections cost no thread")
        }
    }

    @Test(
        "an echoed message costs at most 2 heap allocations in steady state",
        .enabled(if: allocation_counter_is_active() == 1, "the allocation counter is inactive under sanitizers")
    )
    func allocationsPerMessage() throws {
        let server = try TCPServer(.loopback(), asyncHandler: AsyncLineEcho.self, configuration: .init(loops: 1))
        let allocations = try countEchoAllocations(on: server)
        let perMessage = Double(allocations) / 10_000
        print("async mode: \(allocations) heap allocations over 10,000 echoes (\(perMessage) per message)")
        #expect(perMessage <= 2)
    }

    @Test("the hooks: verifyRequest refuses, a handler's error reaches handleError, shutdownRequest ends each one")
    func hooksAndFactory() throws {
        let made = Atomic(0)
        let server = try AsyncHookServer(
            .loopback(), configuration: .init(loops: 2),
            makeAsyncHandler: { context in
                made.add(1, ordering: .sequentiallyConsistent)
                return AsyncFailingEcho(context)
            })
        try withServing(server) { server throws in
            let first = try TestClient(connectingTo: server.serverAddress)
            defer { first.close() }
            try first.send("one\n")
            #expect(try first.readLine() == "one\n")
            let refused = try TestClient(connectingTo: server.serverAddress)
            defer { refused.close() }
            #expect(try refused.readToEnd() == "", "verifyRequest refused the second connection")
            try first.send("fail\n")
            #expect(try first.readToEnd() == "", "the handler's error closed its connection")
            let third = try TestClient(connectingTo: server.serverAddress)
            defer { third.close() }
            try third.send("three\n")
            #expect(try third.readLine() == "three\n")
            try third.socket.shutdown(.write)
            #expect(try third.readToEnd() == "")
            #expect(eventually { server.calls.count("shutdownRequest") == 3 })
        }
        #expect(made.load(ordering: .sequentiallyConsistent) == 2, "the factory ran for each accepted connection")
        #expect(server.calls.all.filter { $0.hasPrefix("handleError") } == ["handleError the handler refused the line"])
    }

    @Test("maxConnections: at the limit the server stops accepting until one closes")
    func maxConnections() throws {
        let server = try AcceptCountingServer(
            .loopback(), asyncHandler: AsyncLineEcho.self, configuration: .init(loops: 1, maxConnections: 2))
        try withServing(server) { server throws in
            let first = try TestClient(connectingTo: server.serverAddress)
            let second = try TestClient(connectingTo: server.serverAddress)
            defer { second.close() }
            for (client, line) in [(first, "1\n"), (second, "2\n")] {
                try client.send(line)
                #expect(try client.readLine() == line)
            }
            let third = try TestClient(connectingTo: server.serverAddress)
            defer { third.close() }
            try third.send("3\n")
            #expect(server.waitForLoopToPassTheBacklog(), "the serving loop stopped")
            #expect(server.accepted == 2)
            #expect(!isReadable(third.socket), "the third connection was answered")
            first.close()
            #expect(try third.readLine() == "3\n")
        }
    }

    @Test("echo over IPv6", .enabled(if: ipv6LoopbackAvailable, "::1 cannot be bound on this machine"))
    func echoIPv6() throws {
        let server = try TCPServer(.loopbackIPv6(), asyncHandler: AsyncLineEcho.self, configuration: .init(loops: 1))
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            try client.send("six\n")
            #expect(try client.readLine() == "six\n")
        }
    }

    @Test("server.run() serves until its task is cancelled, then closes, in every mode")
    func runUntilCancelled() async throws {
        let before = ResourceSnapshot()
        let servers: [TCPServer] = [
            try TCPServer(.loopback(), handler: LineEchoHandler.self, mode: ThreadingMode()),
            try TCPServer(.loopback(), eventHandler: EventLineEcho.self, configuration: .init(loops: 1)),
            try TCPServer(.loopback(), asyncHandler: AsyncLineEcho.self, configuration: .init(loops: 1)),
        ]
        for server in servers {
            let serving = Task { try await server.run(pollInterval: .milliseconds(50)) }
            let address = server.serverAddress
            let reply = try await Task.detached { () -> String in
                #expect(eventually { server.isServing })
                let client = try TestClient(connectingTo: address)
                defer { client.close() }
                try client.send("run\n")
                return try client.readLine()
            }.value
            #expect(reply == "run\n")
            serving.cancel()
            try await serving.value
            #expect(server.lifecycleState == .closed)
        }
        before.expectNothingLeft()
    }
}
