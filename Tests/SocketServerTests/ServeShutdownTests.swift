import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// Counts requests. On "hold" it waits at `holdGate`; on "stop" it waits at `stopGate`, then calls
/// `shutdown()` from the serving thread before it replies.
final class CountingHandler: StreamRequestHandler {
    static let holdGate = TestGate()
    static let stopGate = TestGate()
    static let handled = SanitizedMutex<[String: Int]>([:])
    static func count(for server: BaseServer) -> Int {
        handled.withLock { $0["\(server.serverAddress)"] ?? 0 }
    }

    override func handle() throws {
        let line = try rfile.readLine()
        if line == Array("hold\n".utf8) { Self.holdGate.wait() }
        if line == Array("stop\n".utf8) {
            Self.stopGate.wait()
            server.shutdown()
        }
        Self.handled.withLock { $0["\(server.serverAddress)", default: 0] += 1 }
        try wfile.write(line)
    }
}

/// Calls `shutdown()` from inside its own handler, on the serving thread.
final class SelfStoppingHandler: StreamRequestHandler {
    override func handle() throws {
        server.shutdown()
        try wfile.write("stopping\n")
    }
}

@Suite("serveForever and shutdown (synchronous mode)")
struct ServeShutdownTests {
    @Test func shutdownWakesTheLoopAtOnceWhateverThePollInterval() throws {
        let server = try TCPServer(.loopback(), handler: CountingHandler.self)
        defer { server.serverClose() }
        let serving = try ServingThread(server, pollInterval: .seconds(3600))
        #expect(eventually { server.isServing })
        // With an hour-long poll interval a polling loop would not return for an hour; 30 s is "at once" for
        // a loaded CI box. If it hangs, a connection wakes the loop so that the test can end.
        let returned = try returns(
            within: .seconds(30),
            unblock: { _ = try? TestClient(connectingTo: server.serverAddress).close() }
        ) { server.shutdown() }
        #expect(returned, "shutdown() waited for the poll interval")
        serving.join()
        #expect(!server.isServing)
    }

    @Test func shutdownBlocksUntilTheCurrentRequestFinishes() throws {
        let server = try TCPServer(.loopback(), handler: CountingHandler.self)
        defer { server.serverClose() }
        CountingHandler.holdGate.reset()
        let serving = try ServingThread(server, pollInterval: .milliseconds(500))
        defer { serving.join() }
        let client = try TestClient(connectingTo: server.serverAddress)
        try client.send("hold\n")
        #expect(eventually { CountingHandler.holdGate.waiting == 1 }, "the request is in flight")
        let returnedEarly = try ModeTest.returnedBeforeGateOpened(CountingHandler.holdGate) {
            server.shutdown()
        }
        #expect(!returnedEarly, "shutdown returned while the request ran")
        #expect(CountingHandler.count(for: server) == 1, "the request finished before shutdown returned")
        #expect(!server.isServing, "shutdown returns only after serveForever has")
        #expect(try client.readLine() == "hold\n", "the request in flight completed")
    }

    @Test func aConnectionReadyDuringShutdownIsNotHandledAfterItReturns() throws {
        let server = try TCPServer(.loopback(), handler: CountingHandler.self)
        defer { server.serverClose() }
        CountingHandler.stopGate.reset()
        let serving = try ServingThread(server, pollInterval: .milliseconds(500))
        let busy = try TestClient(connectingTo: server.serverAddress)
        try busy.send("stop\n")
        #expect(eventually { CountingHandler.stopGate.waiting == 1 }, "the request runs")
        // Arrives while the request runs, which then asks the loop to stop: the late connection is readable
        // when the loop regains control, but the shutdown came first. (Asked from the serving thread, so that
        // no timing decides whether it comes before the loop looks at the listener again.)
        let late = try TestClient(connectingTo: server.serverAddress)
        try late.send("late\n")
        CountingHandler.stopGate.open()
        #expect(try busy.readLine() == "stop\n")
        serving.join()
        #expect(CountingHandler.count(for: server) == 1)
        // The late connection is still queued; a new serveForever handles it.
        try server.handleRequest()
        #expect(try late.readLine() == "late\n")
    }

    @Test func shutdownBeforeServeForeverMakesItReturnImmediately() throws {
        let server = try TCPServer(.loopback(), handler: CountingHandler.self)
        defer { server.serverClose() }
        server.shutdown()
        try server.serveForever()
        #expect(!server.isServing)
    }

    @Test func shutdownFromTheServingThreadStopsCleanly() throws {
        let server = try TCPServer(.loopback(), handler: SelfStoppingHandler.self)
        defer { server.serverClose() }
        let serving = try ServingThread(server, pollInterval: .milliseconds(500))
        let client = try TestClient(connectingTo: server.serverAddress)
        #expect(try client.readLine() == "stopping\n")
        serving.join()
        #expect(!server.isServing)
    }

    @Test func serveForeverCanRunAgainAfterShutdown() throws {
        let server = try TCPServer(.loopback(), handler: CountingHandler.self)
        for _ in 0..<3 {
            let serving = try ServingThread(server, pollInterval: .milliseconds(10))
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("again\n")
            #expect(try client.readLine() == "again\n")
            server.shutdown()
            serving.join()
        }
        server.serverClose()
    }

    @Test func twentyServersStartedAndShutDownAtOnceAllReturn() throws {
        let descriptorsBefore = openDescriptorCount()
        let threadsBefore = ResourceSnapshot.threadCount()
        var servers: [TCPServer] = []
        var threads: [ServingThread] = []
        for _ in 0..<20 {
            let server = try TCPServer(.loopback(), handler: CountingHandler.self)
            servers.append(server)
            threads.append(try ServingThread(server, pollInterval: .milliseconds(10)))
            server.shutdown()
        }
        for thread in threads { thread.join() }
        for server in servers { server.serverClose() }
        servers.removeAll()
        #expect(openDescriptorCount() == descriptorsBefore)
        #expect(eventually { ResourceSnapshot.threadCount() <= threadsBefore })
    }
}
