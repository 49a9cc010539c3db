import Foundation
import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// Records why connections closed, for the shutdown tests only.
final class EventShutdownRecordingEcho: EventStreamHandler {
    static let recorder = EventRecorder()

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        connection.write(input.readAll())
    }

    override func connectionClosed(_ connection: EventConnection, error: (any Error)?) {
        Self.recorder.recordClose(error)
    }
}

/// Closes its connection as soon as the server announces shutdown.
final class EventEagerClosingEcho: EventStreamHandler {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        connection.write(input.readAll())
    }

    override func serverShuttingDown(_ connection: EventConnection) {
        connection.close()
    }
}

@Suite("Event mode: graceful shutdown")
struct EventModeShutdownTests {
    /// `shutdown()` + `serverClose()` while 2 MiB are still being echoed: the client gets every byte back,
    /// and `serverClose()` returns once it is done, well before the deadline.
    @Test func dataInFlightIsNotLost() throws {
        let threadsBefore = threadCount()
        let descriptorsBefore = openDescriptorCount()
        let server = try makeEventServer(
            EventChunkEcho.self,
            .init(loops: 2, shutdownTimeout: .seconds(30), outputHighWatermark: 64 * 1024)
        )
        let serving = try OSThread { try? server.serveForever(pollInterval: .milliseconds(50)) }
        let client = try TestClient(connectingTo: server.serverAddress)
        let total = 2 << 20
        let payload = (0..<total).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let socket = client.socket
        let sender = try OSThread { try? socket.sendAll(payload) }

        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        let closed = EventFlag()
        var closer: OSThread?
        let clock = ContinuousClock()
        var closeStarted = clock.now
        while received.count < total {
            let count = try buffer.withUnsafeMutableBytes { try client.socket.receive(into: $0) }
            if count == 0 { break }
            received.append(contentsOf: buffer[0..<count])
            if closer == nil && received.count >= 256 * 1024 {
                closeStarted = clock.now
                closer = try OSThread {
                    server.shutdown()
                    server.serverClose()
                    closed.set()
                }
            }
            pause(.microseconds(200))  // a slow reader, so that data stays in flight
        }
        sender.join()
        #expect(received.count == total)
        #expect(received == payload)
        #expect(!closed.isSet, "serverClose returned with the client still open")
        client.close()
        closer?.join()
        serving.join()
        #expect(closed.isSet)
        #expect(clock.now - closeStarted < .seconds(25))
        #expect(eventually { threadCount() <= threadsBefore })
        #expect(eventually { openDescriptorCount() <= descriptorsBefore })
    }

    @Test func deadlineClosesConnectionsThatDoNotFinish() throws {
        let server = try makeEventServer(
            EventShutdownRecordingEcho.self,
            .init(loops: 1, shutdownTimeout: .milliseconds(300))
        )
        let serving = try OSThread { try? server.serveForever(pollInterval: .milliseconds(50)) }
        let client = try TestClient(connectingTo: server.serverAddress)
        try client.send("hello\n")
        #expect(try client.readLine() == "hello\n")
        let clock = ContinuousClock()
        let start = clock.now
        server.shutdown()
        serving.join()
        // Between shutdown() and serverClose() open connections are still served, as in the threading mode.
        try client.send("between\n")
        #expect(try client.readLine() == "between\n")
        server.serverClose()
        let took = clock.now - start
        #expect(took >= .milliseconds(250))
        #expect(took < .seconds(5))
        #expect(try client.readToEnd() == "")
        #expect(EventShutdownRecordingEcho.recorder.closes.contains(EventModeError.shutdownDeadlineExpired.description))
        client.close()
    }

    @Test func handlersMayCloseEarlyOnShutdown() throws {
        let server = try makeEventServer(EventEagerClosingEcho.self, .init(loops: 2, shutdownTimeout: .seconds(30)))
        let serving = try OSThread { try? server.serveForever(pollInterval: .milliseconds(50)) }
        let clients = try (0..<6).map { _ in try TestClient(connectingTo: server.serverAddress) }
        for client in clients {
            try client.send("x\n")
            #expect(try client.readLine() == "x\n")
        }
        let clock = ContinuousClock()
        let start = clock.now
        server.shutdown()
        serving.join()
        server.serverClose()
        #expect(clock.now - start < .seconds(5))
        for client in clients {
            #expect(try client.readToEnd() == "")
            client.close()
        }
    }

    /// No loop thread and no descriptor survives `serverClose()`, and the mode can serve again afterwards
    /// with a new server socket (its loops restart on demand).
    @Test func serverCloseLeavesNothingBehind() throws {
        let threadsBefore = threadCount()
        let descriptorsBefore = openDescriptorCount()
        let mode = EventMode(handler: EventLineEcho.self, configuration: .init(loops: 3))
        for _ in 0..<2 {
            let server = try TCPServer(.loopback(), handler: BaseRequestHandler.self, mode: mode)
            try withServing(server) { server throws in
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("ok\n")
                #expect(try client.readLine() == "ok\n")
                client.close()
                #expect(eventually { mode.connectionCount == 0 })
            }
        }
        #expect(eventually { threadCount() <= threadsBefore })
        #expect(eventually { openDescriptorCount() <= descriptorsBefore })
    }
}
