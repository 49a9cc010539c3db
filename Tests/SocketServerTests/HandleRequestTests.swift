import Testing

@testable import SocketServer

final class TimeoutCountingServer: TCPServer, @unchecked Sendable {
    let timeouts = CallLog()
    override func handleTimeout() { timeouts.record("timeout") }
}

@Suite("handleRequest and its timeouts")
struct HandleRequestTests {
    @Test func serverTimeoutExpiresIntoHandleTimeout() throws {
        let server = try TimeoutCountingServer(.loopback(), handler: LineEchoHandler.self)
        defer { server.serverClose() }
        server.timeout = .milliseconds(100)
        let clock = ContinuousClock()
        let started = clock.now
        try server.handleRequest()
        #expect(server.timeouts.all == ["timeout"])
        #expect(clock.now - started >= .milliseconds(90))
    }

    @Test func theSmallerOfServerAndSocketTimeoutWins() throws {
        let server = try TimeoutCountingServer(.loopback(), handler: LineEchoHandler.self)
        defer { server.serverClose() }
        server.timeout = .seconds(30)
        server.socket.timeout = .milliseconds(50)
        let clock = ContinuousClock()
        let started = clock.now
        try server.handleRequest()
        #expect(server.timeouts.all == ["timeout"])
        #expect(clock.now - started < .seconds(20), "the 50 ms socket timeout, not the 30 s server one")
    }

    @Test func aRequestThatArrivesInTimeIsHandled() throws {
        let server = try TimeoutCountingServer(.loopback(), handler: LineEchoHandler.self)
        defer { server.serverClose() }
        server.timeout = .seconds(30)
        let client = try TestClient(connectingTo: server.serverAddress)
        try client.send("in time\n")
        try client.socket.shutdown(.write)
        try server.handleRequest()
        #expect(try client.readLine() == "in time\n")
        #expect(server.timeouts.all.isEmpty)
    }

    @Test func handleRequestOnADatagramServer() throws {
        let server = try UDPServer(.loopback(), handler: DatagramEchoHandler.self)
        defer { server.serverClose() }
        let client = try Socket(family: .inet, type: .datagram)
        defer { client.close() }
        client.timeout = .seconds(10)
        try client.send(Array("one shot".utf8), to: server.serverAddress)
        try server.handleRequest()
        let (reply, from) = try client.receiveFrom(maxLength: 100)
        #expect(String(decoding: reply, as: UTF8.self) == "one shot")
        #expect(from == server.serverAddress)
    }
}
