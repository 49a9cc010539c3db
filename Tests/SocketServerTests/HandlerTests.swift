import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// A server whose `handleError` keeps the errors, for handler tests.
final class ErrorCollectingServer: TCPServer, @unchecked Sendable {
    let errors = SanitizedMutex<[any Error]>([])
    let notes = CallLog()
    override func handleError(_ error: any Error, clientAddress: SocketAddress) {
        errors.withLock { $0.append(error) }
    }
    var socketErrors: [SocketError] { errors.withLock { $0.compactMap { $0 as? SocketError } } }
    var errorCount: Int { errors.withLock { $0.count } }
}

private struct Boom: Error, Equatable { let step: String }

final class SetupFailsHandler: BaseRequestHandler {
    var log: CallLog { (server as! ErrorCollectingServer).notes }
    override func setup() throws {
        log.record("setup")
        throw Boom(step: "setup")
    }
    override func handle() throws { log.record("handle") }
    override func finish() throws { log.record("finish") }
}

final class HandleAndFinishFailHandler: BaseRequestHandler {
    var log: CallLog { (server as! ErrorCollectingServer).notes }
    override func handle() throws {
        log.record("handle")
        throw Boom(step: "handle")
    }
    override func finish() throws {
        log.record("finish")
        throw Boom(step: "finish")
    }
}

/// CPython's test_write: an unbuffered write reaches the client before the handler reads, and a 16 MiB
/// write is sent whole.
final class SocketWriterHandler: StreamRequestHandler {
    static let bigSize = 16 << 20
    override func handle() throws {
        try wfile.write("write data\n")
        let response = try rfile.readLine()
        guard response == Array("client response\n".utf8) else { throw Boom(step: "response") }
        try wfile.write([UInt8](repeating: 0, count: Self.bigSize))
    }
}

final class BufferedWriterHandler: StreamRequestHandler {
    override var writeBufferSize: Int { 8192 }
    override func handle() throws {
        try wfile.write("first\n")
        try wfile.write("second\n")
        (server as! ErrorCollectingServer).notes.record("pending \(wfile.bytes.count)")
    }
}

final class ReaderHandler: StreamRequestHandler {
    override var maxLineLength: Int { 1024 }
    override func handle() throws {
        let line = try rfile.readLine()
        let fixed = try rfile.read(5)
        let rest = try rfile.readToEnd()
        try wfile.write("\(line.count) \(String(decoding: fixed, as: UTF8.self)) \(rest.count)\n")
    }
}

final class TimeoutHandler: StreamRequestHandler {
    override var timeout: Duration? { .milliseconds(100) }
    override func handle() throws {
        _ = try rfile.readLine()
    }
}

final class NoDelayHandler: StreamRequestHandler {
    override var disableNagleAlgorithm: Bool { true }
    override func handle() throws {
        let noDelay = try connection.option(level: Int32(IPPROTO_TCP), name: TCP_NODELAY)
        try wfile.write("nodelay \(noDelay)\n")
    }
}

/// Waits for the client to reset the connection, then writes into the dead connection.
final class WriteAfterResetHandler: StreamRequestHandler {
    override var writeBufferSize: Int { Self.buffered ? 1 << 20 : 0 }
    nonisolated(unsafe) static var buffered = false
    override func handle() throws {
        _ = try rfile.readLine()
        let descriptor = connection.fileDescriptor
        _ = eventually {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            return poll(&entry, 1, 0) > 0 && entry.revents & Int16(POLLERR | POLLHUP) != 0
        }
        for _ in 0..<(Self.buffered ? 4 : 64) { try wfile.write([UInt8](repeating: 7, count: 65536)) }
    }
}

/// Resets the connection on close (SO_LINGER 0) instead of a normal FIN.
func resetConnection(_ client: TestClient) {
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    _ = setsockopt(client.socket.fileDescriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    client.close()
}

@Suite("Request handlers")
struct HandlerTests {
    @Test func setupFailureSkipsHandleAndFinish() throws {
        let server = try ErrorCollectingServer(.loopback(), handler: SetupFailsHandler.self)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        try server.handleRequest()
        #expect(server.notes.all == ["setup"])
        #expect(server.errorCount == 1)
        #expect(try client.readToEnd() == "")
    }

    @Test func finishRunsWhenHandleThrowsAndItsErrorWins() throws {
        let server = try ErrorCollectingServer(.loopback(), handler: HandleAndFinishFailHandler.self)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        try server.handleRequest()
        #expect(server.notes.all == ["handle", "finish"])
        #expect(server.errors.withLock { $0.first as? Boom } == Boom(step: "finish"))
        client.close()
    }

    @Test func handlerSeesRequestClientAddressAndServer() throws {
        final class IntrospectingHandler: StreamRequestHandler {
            override func handle() throws {
                let peer = try connection.peerAddress
                let sameServer = server.serverAddress == (try (server as! TCPServer).socket.localAddress)
                try wfile.write("\(peer == clientAddress) \(request.socket === connection) \(sameServer)\n")
            }
        }
        let server = try TCPServer(.loopback(), handler: IntrospectingHandler.self)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        try server.handleRequest()
        #expect(try client.readLine() == "true true true\n")
    }

    @Test func unbufferedWfileSendsAtOnceAndWritesEverything() throws {
        let server = try ErrorCollectingServer(.loopback(), handler: SocketWriterHandler.self)
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            #expect(try client.readLine() == "write data\n")
            try client.send("client response\n")
            var received = 0
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while received < SocketWriterHandler.bigSize {
                let count = try buffer.withUnsafeMutableBytes { try client.socket.receive(into: $0) }
                if count == 0 { break }
                received += count
            }
            #expect(received == SocketWriterHandler.bigSize)
            client.close()
        }
        #expect(server.errorCount == 0)
    }

    @Test func bufferedWfileHoldsBytesUntilFinishFlushes() throws {
        let server = try ErrorCollectingServer(.loopback(), handler: BufferedWriterHandler.self)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        try server.handleRequest()
        #expect(server.notes.all == ["pending 13"])
        #expect(try client.readToEnd() == "first\nsecond\n")
    }

    @Test func rfileReadsLinesCountsAndToEnd() throws {
        let server = try TCPServer(.loopback(), handler: ReaderHandler.self)
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("line one\nabcde" + String(repeating: "z", count: 3000))
            try client.socket.shutdown(.write)
            #expect(try client.readLine() == "9 abcde 3000\n")
        }
    }

    @Test func anOverlongLineThrowsInsteadOfGrowing() throws {
        let server = try ErrorCollectingServer(.loopback(), handler: ReaderHandler.self)
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send(String(repeating: "a", count: 5000))
            #expect(try client.readToEnd() == "", "the connection is dropped")
            let healthy = try TestClient(connectingTo: server.serverAddress)
            try healthy.send("ok\n12345")
            try healthy.socket.shutdown(.write)
            #expect(try healthy.readLine() == "3 12345 0\n")
        }
        #expect(server.errors.withLock { $0.first as? SocketServerError } == .lineTooLong(limit: 1024))
    }

    @Test func readLineLimitIsExact() throws {
        let (left, right) = try socketPair()
        try left.sendAll(Array("12345\n123456\n".utf8))
        let reader = RequestReader(socket: right, maxLineLength: 6)
        #expect(try reader.readLine() == Array("12345\n".utf8))
        #expect(throws: SocketServerError.lineTooLong(limit: 6)) { _ = try reader.readLine() }
    }

    @Test func handlerTimeoutEndsASilentClient() throws {
        let server = try ErrorCollectingServer(.loopback(), handler: TimeoutHandler.self)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        try server.handleRequest()
        #expect(server.socketErrors.first?.isTimeout == true)
        client.close()
    }

    @Test func disableNagleAlgorithmSetsTCPNoDelay() throws {
        let server = try TCPServer(.loopback(), handler: NoDelayHandler.self)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        try server.handleRequest()
        #expect(try client.readLine() == "nodelay 1\n")
    }

    @Test func aPeerThatResetsMidWriteIsAnErrorNotASignal() throws {
        WriteAfterResetHandler.buffered = false
        let server = try ErrorCollectingServer(.loopback(), handler: WriteAfterResetHandler.self)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        try client.send("go\n")
        resetConnection(client)
        try server.handleRequest()
        #expect(server.socketErrors.count == 1)
        #expect(server.socketErrors.first?.isDisconnect == true)
    }

    @Test func aFlushErrorFromAVanishedClientIsSwallowedInFinish() throws {
        WriteAfterResetHandler.buffered = true
        defer { WriteAfterResetHandler.buffered = false }
        let server = try ErrorCollectingServer(.loopback(), handler: WriteAfterResetHandler.self)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        try client.send("go\n")
        resetConnection(client)
        try server.handleRequest()
        #expect(server.errorCount == 0)
    }

    @Test func datagramHandlerReadsThePacketAndAlwaysReplies() throws {
        final class FirstLineHandler: DatagramRequestHandler {
            override func handle() throws {
                let line = try rfile.readLine()
                if line != Array("silent\n".utf8) { try wfile.write(line) }
            }
        }
        let server = try UDPServer(.loopback(), handler: FirstLineHandler.self)
        try withServing(server) { server throws in
            #expect(try datagramRoundTrip(to: server.serverAddress, "first\nsecond\n") == "first\n")
            #expect(try datagramRoundTrip(to: server.serverAddress, "silent\n") == "", "an empty datagram")
        }
    }
}

/// A connected pair of Unix stream sockets.
func socketPair() throws -> (Socket, Socket) {
    var descriptors: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &descriptors) == 0 else {
        throw SocketError(operation: "socketpair", code: errno)
    }
    return (
        Socket(adopting: descriptors[0], family: .unix, type: .stream),
        Socket(adopting: descriptors[1], family: .unix, type: .stream)
    )
}
