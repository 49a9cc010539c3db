import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// Counts requests and can hold each one for a while, to open a window for races.
final class CountingHandler: StreamRequestHandler {
    static let handled = SanitizedMutex<[String: Int]>([:])
    static func count(for server: BaseServer) -> Int {
        handled.withLock { $0["\(server.serverAddress)"] ?? 0 }
    }

    override func handle() throws {
        let line = try rfile.readLine()
        if line == Array("slow\n".utf8) { pause(.milliseconds(300)) }
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
        let thread = try OSThread { try? server.serveForever(pollInterval: .seconds(3600)) }
        #expect(eventually { server.isServing })
        let clock = ContinuousClock()
        let started = clock.now
        server.shutdown()
        let took = clock.now - started
        thread.join()
        #expect(!server.isServing)
        // With an hour-long poll interval a polling loop would never return; generous bound for a loaded CI box.
        #expect(took < .seconds(5))
    }

    @Test func shutdownBlocksUntilTheCurrentRequestFinishes() throws {
        let server = try TCPServer(.loopback(), handler: CountingHandler.self)
        defer { server.serverClose() }
        let thread = try OSThread { try? server.serveForever() }
        defer { thread.join() }
        let client = try TestClient(connectingTo: server.serverAddress)
        try client.send("slow\n")
        #expect(eventually { server.isServing })
        pause(.milliseconds(50))
        server.shutdown()
        #expect(!server.isServing, "shutdown returns only after serveForever has")
        #expect(try client.readLine() == "slow\n", "the request in flight completed")
    }

    @Test func aConnectionReadyDuringShutdownIsNotHandledAfterItReturns() throws {
        let server = try TCPServer(.loopback(), handler: CountingHandler.self)
        defer { server.serverClose() }
        let thread = try OSThread { try? server.serveForever() }
        let busy = try TestClient(connectingTo: server.serverAddress)
        try busy.send("slow\n")
        pause(.milliseconds(50))
        // Arrives while the slow request runs: readable when the loop regains control, but shutdown came first.
        let late = try TestClient(connectingTo: server.serverAddress)
        try late.send("late\n")
        server.shutdown()
        thread.join()
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
        let thread = try OSThread { try? server.serveForever() }
        let client = try TestClient(connectingTo: server.serverAddress)
        #expect(try client.readLine() == "stopping\n")
        thread.join()
        #expect(!server.isServing)
    }

    @Test func serveForeverCanRunAgainAfterShutdown() throws {
        let server = try TCPServer(.loopback(), handler: CountingHandler.self)
        for _ in 0..<3 {
            let thread = try OSThread { try? server.serveForever(pollInterval: .milliseconds(10)) }
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("again\n")
            #expect(try client.readLine() == "again\n")
            server.shutdown()
            thread.join()
        }
        server.serverClose()
    }

    @Test func twentyServersStartedAndShutDownAtOnceAllReturn() throws {
        let descriptorsBefore = openDescriptorCount()
        let threadsBefore = threadCount()
        var servers: [TCPServer] = []
        var threads: [OSThread] = []
        for _ in 0..<20 {
            let server = try TCPServer(.loopback(), handler: CountingHandler.self)
            servers.append(server)
            threads.append(try OSThread { try? server.serveForever(pollInterval: .milliseconds(10)) })
            server.shutdown()
        }
        for thread in threads { thread.join() }
        for server in servers { server.serverClose() }
        servers.removeAll()
        #expect(openDescriptorCount() == descriptorsBefore)
        #expect(eventually { threadCount() <= threadsBefore })
    }
}
