import Foundation
import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

@Suite("Event mode: echo over every transport")
struct EventModeEchoTests {
    @Test func tcpLineEcho() throws {
        let server = try makeEventServer(EventLineEcho.self)
        try withServing(server) { server throws in
            for round in 0..<3 {
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("hello \(round)\n")
                #expect(try client.readLine() == "hello \(round)\n")
                try client.send("second line\nthird line\n")
                #expect(try client.readLine() == "second line\n")
                #expect(try client.readLine() == "third line\n")
                client.close()
            }
        }
        #expect(server.fileDescriptor == -1)
    }

    @Test(.enabled(if: ipv6LoopbackAvailable, "::1 cannot be bound on this machine"))
    func tcpIPv6Echo() throws {
        let server = try TCPServer(
            .loopbackIPv6(),
            eventHandler: EventLineEcho.self,
            configuration: .init(loops: 1)
        )
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("over ipv6\n")
            #expect(try client.readLine() == "over ipv6\n")
            client.close()
        }
    }

    @Test func partialLinesAreKeptUntilComplete() throws {
        let server = try makeEventServer(EventLineEcho.self)
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            for piece in ["par", "tial ", "li", "ne\nnext ", "one\n"] {
                try client.send(piece)
                pause(.milliseconds(20))
            }
            #expect(try client.readLine() == "partial line\n")
            #expect(try client.readLine() == "next one\n")
            client.close()
        }
    }

    @Test func inputEndedReceivesTheUnterminatedRest() throws {
        final class FinalLineEcho: EventStreamHandler {
            override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
                while let line = input.readLine() { connection.write(line) }
            }
            override func inputEnded(_ input: inout EventInput, on connection: EventConnection) throws {
                connection.write(Array("rest:".utf8))
                connection.write(input.readAll())
                connection.close()
            }
        }
        let server = try makeEventServer(FinalLineEcho.self)
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("whole\nunterminated")
            pause(.milliseconds(20))
            try client.socket.shutdown(.write)
            #expect(try client.readToEnd() == "whole\nrest:unterminated")
            client.close()
        }
    }

    @Test func unixStreamEcho() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let server = try UnixStreamServer(
            try directory.socketAddress("event.sock"),
            eventHandler: EventLineEcho.self,
            configuration: .init(loops: 2)
        )
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("over unix\n")
            #expect(try client.readLine() == "over unix\n")
            client.close()
        }
    }

    @Test func udpEcho() throws {
        let server = try UDPServer(.loopback(), eventHandler: EventDatagramEcho.self)
        try withServing(server) { server throws in
            for round in 0..<5 {
                #expect(try datagramRoundTrip(to: server.serverAddress, "ping \(round)") == "ping \(round)")
            }
        }
    }

    @Test func unixDatagramEcho() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let server = try UnixDatagramServer(
            try directory.socketAddress("event-dgram.sock"),
            eventHandler: EventDatagramEcho.self
        )
        try withServing(server) { server throws in
            let reply = try datagramRoundTrip(
                to: server.serverAddress,
                "datagram",
                bindingTo: try directory.socketAddress("client.sock")
            )
            #expect(reply == "datagram")
        }
    }

    /// 4 MiB through one connection, read back concurrently: every byte comes back, in order.
    @Test func bulkEchoKeepsEveryByte() throws {
        let server = try makeEventServer(EventChunkEcho.self, .init(loops: 1))
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            let total = 4 << 20
            let payload = (0..<total).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
            let socket = client.socket
            let sender = try OSThread {
                try? socket.sendAll(payload)
            }
            var received = [UInt8]()
            received.reserveCapacity(total)
            var buffer = [UInt8](repeating: 0, count: 65536)
            while received.count < total {
                let count = try buffer.withUnsafeMutableBytes { try client.socket.receive(into: $0) }
                if count == 0 { break }
                received.append(contentsOf: buffer[0..<count])
            }
            sender.join()
            #expect(received.count == total)
            #expect(received == payload)
            client.close()
        }
    }

    /// Many lines in one read: the replies are staged and leave together, complete and in order.
    @Test func manyLinesPerReadComeBackInOrder() throws {
        let server = try makeEventServer(EventLineEcho.self, .init(loops: 1))
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            let lines = (0..<5_000).map { "line \($0) " + String(repeating: "z", count: $0 % 50) + "\n" }
            try client.send(lines.joined())
            for line in lines {
                #expect(try client.readLine() == line)
            }
            client.close()
        }
    }

    /// Echoed bytes (sent from the receive buffer) mixed with other writes keep their order.
    @Test func mixedWritesKeepTheirOrder() throws {
        let server = try makeEventServer(EventMarkingEcho.self, .init(loops: 1))
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            let lines = (0..<3_000).map { "mixed \($0)\n" }
            try client.send(lines.joined())
            for line in lines {
                #expect(try client.readLine() == line)
                #expect(try client.readLine() == "#\n")
            }
            client.close()
        }
    }

    /// A reply written just before `close()` in the same callback still reaches the client.
    @Test func writeThenCloseDeliversTheReply() throws {
        let server = try makeEventServer(EventGoodbye.self, .init(loops: 1))
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("quit\n")
            #expect(try client.readToEnd() == "bye\n")
            client.close()
        }
    }

    /// A handler error goes to `handleError`, costs that client its connection, and nobody else's.
    @Test func handlerErrorClosesOnlyThatConnection() throws {
        let (logger, store) = RecordingLogHandler.makeLogger()
        let server = try makeEventServer(EventFailOnBang.self, .init(loops: 1))
        server.logger = logger
        try withServing(server) { server throws in
            let good = try TestClient(connectingTo: server.serverAddress)
            let bad = try TestClient(connectingTo: server.serverAddress)
            try good.send("one\n")
            #expect(try good.readLine() == "one\n")
            try bad.send("!\n")
            #expect(try bad.readToEnd() == "")
            try good.send("two\n")
            #expect(try good.readLine() == "two\n")
            #expect(eventually { store.messages.contains { $0.hasPrefix("error while processing a request from") } })
            good.close()
            bad.close()
        }
    }

    /// `verifyRequest` still decides, from the server's loop, before the event mode adopts a connection.
    @Test func verifyRequestStillRuns() throws {
        let server = try EventRejectingServer(.loopback(), eventHandler: EventLineEcho.self)
        try withServing(server) { server throws in
            let rejected = try TestClient(connectingTo: server.serverAddress)
            #expect(try rejected.readToEnd() == "")
            rejected.close()
            server.rejectNext.store(false, ordering: .relaxed)
            let accepted = try TestClient(connectingTo: server.serverAddress)
            try accepted.send("welcome\n")
            #expect(try accepted.readLine() == "welcome\n")
            accepted.close()
        }
        #expect(server.shutdownRequests.load(ordering: .relaxed) >= 2)
    }

    /// End of input from the client closes the connection after its last reply has gone out.
    @Test func halfCloseFlushesThenCloses() throws {
        let server = try makeEventServer(EventLineEcho.self)
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("last words\n")
            try client.socket.shutdown(.write)
            #expect(try client.readToEnd() == "last words\n")
            client.close()
            #expect(eventually { eventMode(of: server).connectionCount == 0 })
        }
    }
}

/// Throws when a line starts with `!`.
final class EventFailOnBang: EventStreamHandler {
    struct Bang: Error {}

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while let line = input.readLine() {
            if line.first == UInt8(ascii: "!") { throw Bang() }
            connection.write(line)
        }
    }
}

/// Rejects connections in `verifyRequest` while `rejectNext` is set; counts `shutdownRequest` calls.
final class EventRejectingServer: TCPServer, @unchecked Sendable {
    let rejectNext = Atomic<Bool>(true)
    let shutdownRequests = Atomic<Int>(0)

    override func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool {
        !rejectNext.load(ordering: .relaxed)
    }

    override func shutdownRequest(_ request: Request) {
        shutdownRequests.wrappingAdd(1, ordering: .relaxed)
        super.shutdownRequest(request)
    }
}

/// Answers any line with "bye" and closes.
final class EventGoodbye: EventStreamHandler {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        if input.readLine() != nil {
            connection.write("bye\n")
            connection.close()
        }
    }
}

/// Echoes each line followed by a line of its own ("#").
final class EventMarkingEcho: EventStreamHandler {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while let line = input.readLine() {
            connection.write(line)
            connection.write("#\n")
        }
    }
}
