import Foundation
import Glibc
import Synchronization
import Testing

@testable import SocketServer

@Suite("Closing servers and Unix socket files")
struct CloseTests {
    @Test func serverCloseClosesTheListeningSocket() throws {
        let server = try TCPServer(.loopback(), handler: BaseRequestHandler.self)
        let address = server.serverAddress
        #expect(server.fileDescriptor >= 0)
        server.serverClose()
        #expect(server.fileDescriptor == -1)
        #expect(throws: SocketError.self) { _ = try TestClient(connectingTo: address) }
        server.serverClose()  // a second close is harmless
    }

    @Test func deinitClosesAsABackstop() throws {
        let before = openDescriptorCount()
        do {
            let server = try TCPServer(.loopback(), handler: BaseRequestHandler.self)
            try server.handleRequestWithoutWaiting()
        }
        #expect(openDescriptorCount() == before)
    }

    @Test func unixServerRemovesItsSocketFileOnClose() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let address = try directory.socketAddress("own.sock")
        let server = try UnixStreamServer(address, handler: BaseRequestHandler.self)
        #expect(FileManager.default.fileExists(atPath: address.path ?? ""))
        server.serverClose()
        #expect(!FileManager.default.fileExists(atPath: address.path ?? ""))
    }

    @Test func aStaleSocketFileIsReplaced() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let address = try directory.socketAddress("stale.sock")
        // A socket file left behind by a process that died without closing.
        let orphan = try Socket(family: .unix, type: .stream)
        try orphan.bind(to: address)
        orphan.close()
        #expect(FileManager.default.fileExists(atPath: address.path ?? ""))
        let server = try UnixStreamServer(address, handler: LineEchoHandler.self)
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: address)
            try client.send("fresh\n")
            #expect(try client.readLine() == "fresh\n")
        }
    }

    @Test func aLiveSocketIsNeverStolen() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let address = try directory.socketAddress("live.sock")
        let first = try UnixStreamServer(address, handler: BaseRequestHandler.self)
        defer { first.serverClose() }
        #expect(throws: SocketError.self) { _ = try UnixStreamServer(address, handler: BaseRequestHandler.self) }
        #expect(FileManager.default.fileExists(atPath: address.path ?? ""), "the live server keeps its path")
    }

    @Test func aRegularFileAtThePathIsNeverRemoved() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let address = try directory.socketAddress("data.txt")
        let path = address.path ?? ""
        #expect(FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8)))
        #expect(throws: SocketError.self) { _ = try UnixStreamServer(address, handler: BaseRequestHandler.self) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me")
    }

    @Test func unixDatagramServerCleansUpToo() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let address = try directory.socketAddress("dgram.sock")
        let stale = try Socket(family: .unix, type: .datagram)
        try stale.bind(to: address)
        stale.close()
        let server = try UnixDatagramServer(address, handler: DatagramEchoHandler.self)
        server.serverClose()
        #expect(!FileManager.default.fileExists(atPath: address.path ?? ""))
    }

    @Test func closingEveryKindOfServerLeavesNoDescriptor() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let before = openDescriptorCount()
        let servers: [TCPServer] = [
            try TCPServer(.loopback(), handler: LineEchoHandler.self),
            try UDPServer(.loopback(), handler: DatagramEchoHandler.self),
            try UnixStreamServer(try directory.socketAddress("a.sock"), handler: LineEchoHandler.self),
            try UnixDatagramServer(try directory.socketAddress("b.sock"), handler: DatagramEchoHandler.self),
        ]
        for server in servers {
            try withServing(server) { _ in }
        }
        #expect(openDescriptorCount() == before)
    }
}

extension TCPServer {
    /// Creates the server's event loop (as serving does) without waiting for a request.
    func handleRequestWithoutWaiting() throws {
        timeout = .milliseconds(1)
        try handleRequest()
    }
}

/// Replies once its gate opens, which the test does only while it closes the server.
final class LateDatagramReplyHandler: DatagramRequestHandler {
    static let gate = TestGate()
    override func handle() throws {
        Self.gate.wait()
        try wfile.write(packet)
    }
}

@Suite("Closing a datagram server with requests in flight", .serialized)
struct DatagramCloseTests {
    @Test(arguments: ["threading", "pool"])
    func repliesInFlightAreStillSent(modeName: String) throws {
        let mode: any ConcurrencyMode = modeName == "threading" ? ThreadingMode() : ThreadPoolMode(workers: 2)
        let server = try UDPServer(.loopback(), handler: LateDatagramReplyHandler.self, mode: mode)
        let client = try Socket(family: .inet, type: .datagram)
        defer { client.close() }
        client.timeout = .seconds(10)
        LateDatagramReplyHandler.gate.reset()
        let serving = try ServingThread(server, pollInterval: .milliseconds(20))
        try client.send(Array("late reply".utf8), to: server.serverAddress)
        #expect(eventually { LateDatagramReplyHandler.gate.waiting == 1 })
        server.shutdown()
        serving.join()
        // serverClose joins the handler, which replies through the still-open socket.
        let returnedEarly = try ModeTest.returnedBeforeGateOpened(LateDatagramReplyHandler.gate) {
            server.serverClose()
        }
        #expect(!returnedEarly, "serverClose returned with the request in flight")
        #expect(server.fileDescriptor == -1)
        let (reply, _) = try client.receiveFrom(maxLength: 100)
        #expect(String(decoding: reply, as: UTF8.self) == "late reply")
    }
}
