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

/// Echoes everything and records why connections closed, for the data-in-flight test only.
final class EventDrainRecordingEcho: EventStreamHandler {
    static let recorder = EventRecorder()

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        connection.write(input.readAll())
    }

    override func connectionClosed(_ connection: EventConnection, error: (any Error)?) {
        Self.recorder.recordClose(error)
    }
}

/// Closes its connection as soon as the server announces shutdown; records why connections closed.
final class EventEagerClosingEcho: EventStreamHandler {
    static let recorder = EventRecorder()

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        connection.write(input.readAll())
    }

    override func serverShuttingDown(_ connection: EventConnection) {
        connection.close()
    }

    override func connectionClosed(_ connection: EventConnection, error: (any Error)?) {
        Self.recorder.recordClose(error)
    }
}

@Suite("Event mode: graceful shutdown")
struct EventModeShutdownTests {
    /// `shutdown()` + `serverClose()` while 2 MiB are still being echoed: the client gets every byte back,
    /// and `serverClose()` returns once it is done, without the deadline closing anything.
    @Test func dataInFlightIsNotLost() throws {
        let threadsBefore = ResourceSnapshot.threadCount()
        let descriptorsBefore = openDescriptorCount()
        let server = try makeEventServer(
            EventDrainRecordingEcho.self,
            .init(loops: 2, shutdownTimeout: .seconds(60), outputHighWatermark: 64 * 1024)
        )
        let serving = try ServingThread(server)
        let client = try TestClient(connectingTo: server.serverAddress)
        let total = 2 << 20
        let payload = (0..<total).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let socket = client.socket
        let sendFailure = CallLog()
        let sender = try OSThread {
            do { try socket.sendAll(payload) } catch { sendFailure.record("\(error)") }
        }

        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        let closed = EventFlag()
        var closer: OSThread?
        while received.count < total {
            let count = try buffer.withUnsafeMutableBytes { try client.socket.receive(into: $0) }
            if count == 0 { break }
            received.append(contentsOf: buffer[0..<count])
            if closer == nil && received.count >= 256 * 1024 {
                closer = try OSThread {
                    server.shutdown()
                    server.serverClose()
                    closed.set()
                }
            }
            pause(.microseconds(200))  // a slow reader, so that data stays in flight
        }
        sender.join()
        #expect(sendFailure.all.isEmpty)
        #expect(received.count == total)
        #expect(received == payload)
        #expect(!closed.isSet, "serverClose returned with the client still open")
        client.close()
        closer?.join()
        serving.join()
        #expect(closed.isSet)
        // serverClose returned because the connection finished, not because the deadline closed it.
        #expect(EventDrainRecordingEcho.recorder.closes.count == 1)
        #expect(!EventDrainRecordingEcho.recorder.closes.contains(EventModeError.shutdownDeadlineExpired.description))
        #expect(eventually { ResourceSnapshot.threadCount() <= threadsBefore })
        #expect(eventually { openDescriptorCount() <= descriptorsBefore })
    }

    @Test func deadlineClosesConnectionsThatDoNotFinish() throws {
        let server = try makeEventServer(
            EventShutdownRecordingEcho.self,
            .init(loops: 1, shutdownTimeout: .milliseconds(300))
        )
        let serving = try ServingThread(server)
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
        // The client never closes, so only the deadline can end serverClose (30 s: "does not hang").
        let returned = try returns(within: .seconds(30), unblock: { try? client.socket.shutdown(.write) }) {
            server.serverClose()
        }
        #expect(returned, "serverClose did not close the connection at its deadline")
        // A timer never fires early: not before the deadline (less libevent's millisecond rounding).
        #expect(clock.now - start >= .milliseconds(280))
        #expect(EventShutdownRecordingEcho.recorder.closes.contains(EventModeError.shutdownDeadlineExpired.description))
        client.close()
    }

    @Test func handlersMayCloseEarlyOnShutdown() throws {
        let server = try makeEventServer(EventEagerClosingEcho.self, .init(loops: 2, shutdownTimeout: .seconds(60)))
        let serving = try ServingThread(server)
        let clients = try (0..<6).map { _ in try TestClient(connectingTo: server.serverAddress) }
        for client in clients {
            try client.send("x\n")
            #expect(try client.readLine() == "x\n")
        }
        server.shutdown()
        serving.join()
        server.serverClose()
        // Every connection closed by its handler, none by the 60 s deadline.
        let closes = EventEagerClosingEcho.recorder.closes
        #expect(closes.count == 6 && closes.allSatisfy { $0 == "orderly" }, "\(closes)")
        for client in clients {
            #expect(try client.readToEnd() == "")
            client.close()
        }
    }

    /// No loop thread and no descriptor survives `serverClose()`, and the mode can serve again afterwards
    /// with a new server socket (its loops restart on demand).
    @Test func serverCloseLeavesNothingBehind() throws {
        let threadsBefore = ResourceSnapshot.threadCount()
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
        #expect(eventually { ResourceSnapshot.threadCount() <= threadsBefore })
        #expect(eventually { openDescriptorCount() <= descriptorsBefore })
    }
}
