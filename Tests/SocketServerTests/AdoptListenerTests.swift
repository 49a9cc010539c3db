import Foundation
import Glibc
import Testing

@testable import SocketServer

// Servers built around a socket bound elsewhere (an inherited listener): every class and mode, the checks that
// refuse what cannot be served, and `Socket(inheriting:)`.

/// A listening TCP socket on 127.0.0.1, port 0, bound and listening the way systemd would hand it over.
private func boundStreamListener(family: AddressFamily = .inet, unixPath: SocketAddress? = nil) throws -> Socket {
    let socket = try Socket(family: family, type: .stream)
    try socket.bind(to: unixPath ?? .loopback(port: 0))
    try socket.listen(backlog: 16)
    return socket
}

private func boundDatagramSocket(_ address: SocketAddress = .loopback(port: 0)) throws -> Socket {
    let socket = try Socket(family: address.family, type: .datagram)
    try socket.bind(to: address)
    return socket
}

/// One line's round trip on a new connection.
private func echoOnce(_ address: SocketAddress, _ text: String = "adopted\n") throws -> String {
    let client = try TestClient(connectingTo: address)
    defer { client.close() }
    try client.send(text)
    return try client.readLine()
}

@Suite("Adopting an inherited listener", .serialized)
struct AdoptListenerTests {
    @Test("a TCPServer around a bound listener serves on its address, in every mode")
    func tcpEveryMode() throws {
        let modes: [any ConcurrencyMode] = [SynchronousMode(), ThreadingMode(), ThreadPoolMode(workers: 2), ForkingMode()]
        for mode in modes {
            let listener = try boundStreamListener()
            let bound = try listener.localAddress
            let server = try TCPServer(adopting: listener, handler: OneLineEcho.self, mode: mode)
            #expect(server.serverAddress == bound)
            #expect(server.lifecycleState == .bound)
            #expect(server.socket.isNonBlocking, "a stream listener is made non-blocking")
            try withServing(server) { server in
                let reply = try echoOnce(server.serverAddress)
                #expect(reply == "adopted\n", "mode \(type(of: mode))")
            }
            #expect(listener.isClosed, "serverClose() closes the adopted socket")
        }
    }

    @Test("event and async modes adopt a listener")
    func eventAndAsync() throws {
        let evented = try TCPServer(adopting: try boundStreamListener(), eventHandler: EventLineEchoForAdoption.self)
        try withServing(evented) { server in
            let reply = try echoOnce(server.serverAddress)
            #expect(reply == "adopted\n")
        }
        let asynchronous = try TCPServer(adopting: try boundStreamListener(), asyncHandler: AsyncLineEcho.self)
        try withServing(asynchronous) { server in
            let reply = try echoOnce(server.serverAddress)
            #expect(reply == "adopted\n")
        }
    }

    @Test("the named threading and forking classes adopt a listener")
    func namedClasses() throws {
        let threaded = try ThreadingTCPServer(adopting: try boundStreamListener(), handler: OneLineEcho.self)
        try withServing(threaded) { server in
            let reply = try echoOnce(server.serverAddress)
            #expect(reply == "adopted\n")
        }
        let forked = try ForkingTCPServer(adopting: try boundStreamListener(), handler: OneLineEcho.self)
        #expect(forked.timeout == .seconds(300), "the reference's default timeout stays")
        try withServing(forked) { server in
            let reply = try echoOnce(server.serverAddress)
            #expect(reply == "adopted\n")
        }
        let threadedUDP = try ThreadingUDPServer(adopting: try boundDatagramSocket(), handler: DatagramEchoHandler.self)
        try withServing(threadedUDP) { server in
            let reply = try datagramRoundTrip(to: server.serverAddress, "d")
            #expect(reply == "d")
        }
        let forkedUDP = try ForkingUDPServer(adopting: try boundDatagramSocket(), handler: DatagramEchoHandler.self)
        try withServing(forkedUDP) { server in
            let reply = try datagramRoundTrip(to: server.serverAddress, "f")
            #expect(reply == "f")
        }
    }

    @Test("UDP and Unix servers adopt their sockets; an adopted Unix socket's file is left in place")
    func datagramAndUnix() throws {
        let udpSocket = try boundDatagramSocket()
        try udpSocket.setNonBlocking(true)
        let udp = try UDPServer(adopting: udpSocket, handler: DatagramEchoHandler.self)
        #expect(!udp.socket.isNonBlocking, "a datagram socket is made blocking, for replies from any thread")
        try withServing(udp) { server in
            let reply = try datagramRoundTrip(to: server.serverAddress, "ping")
            #expect(reply == "ping")
        }

        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let streamPath = try directory.socketAddress("stream.sock")
        let unixStream = try UnixStreamServer(
            adopting: try boundStreamListener(family: .unix, unixPath: streamPath), handler: OneLineEcho.self)
        #expect(unixStream.serverAddress == streamPath)
        try withServing(unixStream) { server in
            let reply = try echoOnce(server.serverAddress)
            #expect(reply == "adopted\n")
        }
        #expect(FileManager.default.fileExists(atPath: directory.path + "/stream.sock"), "the binder owns the file")

        let datagramPath = try directory.socketAddress("dgram.sock")
        let unixDatagram = try UnixDatagramServer(
            adopting: try boundDatagramSocket(datagramPath), handler: DatagramEchoHandler.self)
        try withServing(unixDatagram) { server in
            let reply = try datagramRoundTrip(to: server.serverAddress, "u", bindingTo: try directory.socketAddress("client"))
            #expect(reply == "u")
        }
        let forkedUnix = try ForkingUnixStreamServer(
            adopting: try boundStreamListener(family: .unix, unixPath: try directory.socketAddress("forked.sock")),
            handler: OneLineEcho.self)
        try withServing(forkedUnix) { server in
            let reply = try echoOnce(server.serverAddress)
            #expect(reply == "adopted\n")
        }
        let threadedUnix = try ThreadingUnixDatagramServer(
            adopting: try boundDatagramSocket(try directory.socketAddress("threaded.sock")),
            handler: DatagramEchoHandler.self)
        try withServing(threadedUnix) { server in
            let reply = try datagramRoundTrip(to: server.serverAddress, "t", bindingTo: try directory.socketAddress("c2"))
            #expect(reply == "t")
        }
    }

    @Test("a socket that cannot be served is refused with a clear error and left open")
    func refusals() throws {
        func refusal(_ body: () throws -> Void) -> String? {
            do {
                try body()
                return nil
            } catch SocketServerError.invalidListener(let detail) {
                return detail
            } catch {
                return "unexpected \(error)"
            }
        }
        let datagram = try boundDatagramSocket()
        defer { datagram.close() }
        let wrongType = refusal { _ = try TCPServer(adopting: datagram, handler: OneLineEcho.self) }
        #expect(wrongType?.contains("not a stream socket") == true, "\(wrongType ?? "accepted")")
        #expect(!datagram.isClosed)

        let listener = try boundStreamListener()
        defer { listener.close() }
        let wrongClass = refusal { _ = try UDPServer(adopting: listener, handler: DatagramEchoHandler.self) }
        #expect(wrongClass?.contains("not a datagram socket") == true, "\(wrongClass ?? "accepted")")
        let wrongFamily = refusal { _ = try UnixStreamServer(adopting: listener, handler: OneLineEcho.self) }
        #expect(wrongFamily?.contains("AF_UNIX") == true, "\(wrongFamily ?? "accepted")")
        let mislabelled = Socket(adopting: dup(listener.fileDescriptor), family: .inet6, type: .stream)
        defer { mislabelled.close() }
        let wrongClaim = refusal { _ = try TCPServer(adopting: mislabelled, handler: OneLineEcho.self) }
        #expect(wrongClaim?.contains("not AF_INET6") == true, "\(wrongClaim ?? "accepted")")

        let unbound = try Socket(family: .inet, type: .stream)
        defer { unbound.close() }
        let notBound = refusal { _ = try TCPServer(adopting: unbound, handler: OneLineEcho.self) }
        #expect(notBound?.contains("not bound") == true, "\(notBound ?? "accepted")")

        let quiet = try Socket(family: .inet, type: .stream)
        defer { quiet.close() }
        try quiet.bind(to: .loopback(port: 0))
        let notListening = refusal { _ = try TCPServer(adopting: quiet, handler: OneLineEcho.self) }
        #expect(notListening?.contains("does not listen") == true, "\(notListening ?? "accepted")")

        let closed = try boundStreamListener()
        closed.close()
        let isClosed = refusal { _ = try TCPServer(adopting: closed, handler: OneLineEcho.self) }
        #expect(isClosed?.contains("closed") == true, "\(isClosed ?? "accepted")")
        #expect(!listener.isClosed && !quiet.isClosed && !unbound.isClosed)
    }

    @Test("Socket(inheriting:) reads type and family from the kernel and sets close-on-exec")
    func inheriting() throws {
        let listener = try boundStreamListener()
        defer { listener.close() }
        let copy = dup(listener.fileDescriptor)  // dup clears FD_CLOEXEC
        #expect(fcntl(copy, F_GETFD) & FD_CLOEXEC == 0)
        let inherited = try Socket(inheriting: copy)
        defer { inherited.close() }
        #expect(inherited.family == .inet && inherited.type == .stream)
        #expect(fcntl(copy, F_GETFD) & FD_CLOEXEC != 0)

        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        defer { for end in ends { close(end) } }
        #expect(throws: SocketServerError.invalidListener("descriptor \(ends[0]) is not a socket")) {
            _ = try Socket(inheriting: ends[0])
        }
        let unused = ends[1] + 1000
        #expect(throws: SocketError(operation: "fcntl", code: EBADF)) { _ = try Socket(inheriting: unused) }
    }
}

/// Echoes one line, then ends the request: a forked child must not wait for an end of file that the test
/// process, holding its own copy of the client socket, never sends.
final class OneLineEcho: StreamRequestHandler {
    override func handle() throws {
        try wfile.write(try rfile.readLine())
    }
}

/// Echoes lines on an event loop.
final class EventLineEchoForAdoption: EventStreamHandler {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while let line = input.readLine() { connection.write(line) }
    }
}
