import Foundation
import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

/// Echoes everything; records the largest output queue and every close, for the slow-reader test only.
final class EventSlowReaderEcho: EventStreamHandler {
    static let recorder = EventRecorder()

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        connection.write(input.readAll())
        Self.recorder.recordOutput(connection.bufferedOutputCount)
    }
}

/// A line echo that records why each connection closed, for the idle-timeout test only.
final class EventIdleRecordingEcho: EventStreamHandler {
    static let recorder = EventRecorder()

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while let line = input.readLine() { connection.write(line) }
    }

    override func connectionClosed(_ connection: EventConnection, error: (any Error)?) {
        Self.recorder.recordClose(error)
    }
}

@Suite("Event mode: backpressure, timeouts and limits")
struct EventModeLimitsTests {
    /// A client that sends without ever reading: the server stops reading it once its output reaches the
    /// high watermark, other clients are unaffected, and nothing is lost once the client reads again.
    @Test func slowReaderIsNotReadFromAndCostsOthersNothing() throws {
        let highWatermark = 256 * 1024
        let configuration = EventMode.Configuration(
            loops: 1,
            readChunkSize: 64 * 1024,
            outputHighWatermark: highWatermark,
            outputLowWatermark: 64 * 1024
        )
        let server = try makeEventServer(EventSlowReaderEcho.self, configuration)
        try withServing(server) { server throws in
            let slow = try TestClient(connectingTo: server.serverAddress)
            let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
            var sent = 0
            let clock = ContinuousClock()
            var lastProgress = clock.now
            let giveUp = clock.now + .seconds(20)
            // Push until the whole path (client, kernel buffers, server) refuses more for a second: a server
            // that keeps reading would take the 128 MiB below long before (a window, but a slow machine can
            // only hide that fault, never fail a server that stops reading).
            while clock.now - lastProgress < .seconds(1) && clock.now < giveUp && sent < 256 << 20 {
                let count = chunk.withUnsafeBytes { sendAvailable(slow.socket, $0) }
                if count > 0 {
                    sent += count
                    lastProgress = clock.now
                } else {
                    pause(.milliseconds(5))
                }
            }
            #expect(sent < 128 << 20, "the server kept reading from a peer that does not read")
            #expect(EventSlowReaderEcho.recorder.maxBufferedOutput.load(ordering: .relaxed) <= highWatermark)

            let other = try TestClient(connectingTo: server.serverAddress)
            try other.send("still served\n")
            #expect(try other.readLine() == "still served\n")
            other.close()

            // Reading everything back proves the paused connection resumes and loses nothing.
            var received = 0
            var buffer = [UInt8](repeating: 0, count: 256 * 1024)
            while received < sent {
                let count = try buffer.withUnsafeMutableBytes { try slow.socket.receive(into: $0) }
                if count == 0 { break }
                #expect(buffer[0..<count].allSatisfy { $0 == UInt8(ascii: "x") })
                received += count
            }
            #expect(received == sent)
            slow.close()
        }
    }

    /// The active client never pauses longer than 10 ms between round trips, a 200th of the timeout, so only
    /// a stall of the whole machine for 2 s could close it; the idle one is closed, and not before its time.
    @Test func idleConnectionIsClosedAndActiveOneIsNot() throws {
        let idleTimeout = Duration.seconds(2)
        let configuration = EventMode.Configuration(loops: 1, idleTimeout: idleTimeout)
        let server = try makeEventServer(EventIdleRecordingEcho.self, configuration)
        try withServing(server) { server throws in
            let clock = ContinuousClock()
            let start = clock.now  // before the idle connection exists, so its timer cannot have started earlier
            let idle = try TestClient(connectingTo: server.serverAddress, timeout: .seconds(30))
            let active = try TestClient(connectingTo: server.serverAddress)
            defer {
                idle.close()
                active.close()
            }
            var rounds = 0
            // Round trips until the idle connection is closed; bounded in count and time.
            while !isReadable(idle.socket) && rounds < 100_000 && clock.now - start < .seconds(30) {
                try active.send("tick \(rounds)\n")
                #expect(try active.readLine() == "tick \(rounds)\n")
                rounds += 1
                pause(.milliseconds(10))
            }
            let waited = clock.now - start
            #expect(try idle.readToEnd() == "", "the idle connection is closed")
            // libevent's timer never fires early; allow for its millisecond rounding.
            #expect(waited >= idleTimeout - .milliseconds(20), "closed after \(waited)")
            try active.send("still here\n")
            #expect(try active.readLine() == "still here\n")
            #expect(
                eventually { EventIdleRecordingEcho.recorder.closes.contains(EventModeError.idleTimeout.description) }
            )
            #expect(EventIdleRecordingEcho.recorder.closes.count == 1, "only the idle connection closed")
        }
    }

    @Test func maxConnectionsStopsAcceptingUntilOneCloses() throws {
        let configuration = EventMode.Configuration(loops: 1, maxConnections: 2)
        let server = try AcceptCountingServer(.loopback(), eventHandler: EventLineEcho.self, configuration: configuration)
        try withServing(server) { server throws in
            let first = try TestClient(connectingTo: server.serverAddress)
            let second = try TestClient(connectingTo: server.serverAddress)
            try first.send("1\n")
            try second.send("2\n")
            #expect(try first.readLine() == "1\n")
            #expect(try second.readLine() == "2\n")

            // The kernel completes the handshake, but the server does not take the connection, though its
            // loop keeps running past it.
            let third = try TestClient(connectingTo: server.serverAddress)
            try third.send("3\n")
            #expect(server.waitForLoopToPassTheBacklog(), "the serving loop stopped")
            #expect(server.accepted == 2)
            #expect(!isReadable(third.socket), "the third connection was answered")
            #expect(eventMode(of: server).connectionCount == 2)

            first.close()
            #expect(try third.readLine() == "3\n")
            second.close()
            third.close()
        }
    }

    /// A line without end costs its sender the connection once it passes `maxBufferedInput`.
    @Test func unboundedLineClosesThatConnection() throws {
        let (logger, store) = RecordingLogHandler.makeLogger()
        let configuration = EventMode.Configuration(loops: 1, maxBufferedInput: 1024)
        let server = try makeEventServer(EventLineEcho.self, configuration)
        server.logger = logger
        try withServing(server) { server throws in
            let flooder = try TestClient(connectingTo: server.serverAddress)
            try flooder.send(String(repeating: "y", count: 8192))
            do {
                #expect(try flooder.readToEnd() == "")
            } catch let error as SocketError {
                #expect(error.isDisconnect)
            }
            let other = try TestClient(connectingTo: server.serverAddress)
            try other.send("fine\n")
            #expect(try other.readLine() == "fine\n")
            #expect(
                eventually {
                    store.all.contains { "\($0.2["socketserver.error"] ?? "")".contains("unconsumed input") }
                }
            )
            flooder.close()
            other.close()
        }
    }

    /// A handler may pause reading; bytes kept meanwhile are offered again on resume.
    @Test func pauseAndResumeReading() throws {
        let server = try makeEventServer(EventPausingEcho.self, .init(loops: 1))
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("pause\nqueued\n")
            #expect(try client.readLine() == "paused\n")
            try client.send("more\n")
            #expect(try client.readLine() == "queued\n")
            #expect(try client.readLine() == "more\n")
            client.close()
        }
    }
}

/// On "pause", pauses reading, leaves the rest unconsumed, and resumes 100 ms later from another thread
/// through the connection's `handle`.
final class EventPausingEcho: EventStreamHandler {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while let line = input.readLine() {
            if Array(line) == Array("pause\n".utf8) {
                connection.write("paused\n")
                connection.pauseReading()
                let handle = connection.handle
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(100)) {
                    handle.execute { $0.resumeReading() }
                }
                return
            }
            connection.write(line)
        }
    }
}
