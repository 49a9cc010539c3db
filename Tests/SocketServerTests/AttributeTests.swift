import Foundation
import Glibc
import Testing

@testable import SocketServer

/// The listen backlog the kernel recorded for a listening TCP socket (`tcpi_sacked` of `TCP_INFO` holds
/// `sk_max_ack_backlog` while the socket listens).
func listenBacklog(of socket: Socket) throws -> Int {
    var info = tcp_info()
    var size = socklen_t(MemoryLayout<tcp_info>.size)
    guard getsockopt(socket.fileDescriptor, Int32(IPPROTO_TCP), TCP_INFO, &info, &size) == 0 else {
        throw SocketError(operation: "getsockopt", code: errno)
    }
    return Int(info.tcpi_sacked)
}

final class ReusingServer: TCPServer, @unchecked Sendable {
    override var allowReuseAddress: Bool {
        get { true }
        set {}
    }
}

@Suite("Server attributes and their defaults")
struct AttributeTests {
    @Test func defaults() throws {
        let server = try TCPServer(.loopback(), handler: BaseRequestHandler.self)
        defer { server.serverClose() }
        #expect(server.timeout == nil)
        #expect(server.addressFamily == .inet)
        #expect(TCPServer.socketType == .stream)
        #expect(UDPServer.socketType == .datagram)
        #expect(server.requestQueueSize == Int(SOMAXCONN))
        #expect(server.allowReuseAddress == false)
        #expect(server.allowReusePort == false)
        #expect(server.dualStack == false)
        #expect(server.mode is SynchronousMode)
        let udp = try UDPServer(.loopback(), handler: BaseRequestHandler.self)
        defer { udp.serverClose() }
        #expect(udp.maxPacketSize == 8192)
    }

    @Test func listenGetsRequestQueueSize() throws {
        let server = try TCPServer(.loopback(), handler: BaseRequestHandler.self)
        defer { server.serverClose() }
        let systemCap = Int((try? String(contentsOfFile: "/proc/sys/net/core/somaxconn", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? Int(SOMAXCONN)
        #expect(try listenBacklog(of: server.socket) == min(Int(SOMAXCONN), systemCap))

        let small = try TCPServer(.loopback(), handler: BaseRequestHandler.self, bindAndActivate: false)
        defer { small.serverClose() }
        small.requestQueueSize = 5
        try small.serverBind()
        try small.serverActivate()
        #expect(try listenBacklog(of: small.socket) == 5)
    }

    @Test func portZeroBecomesTheBoundPort() throws {
        let server = try TCPServer(.loopback(), handler: BaseRequestHandler.self)
        defer { server.serverClose() }
        #expect(server.serverAddress.port != 0)
        #expect(server.serverAddress.host == "127.0.0.1")
        #expect(server.serverAddress == (try server.socket.localAddress))
    }

    @Test func bindAndActivateFalseCreatesAnUnboundSocket() throws {
        let address = SocketAddress.loopback(port: 0)
        let server = try TCPServer(address, handler: BaseRequestHandler.self, bindAndActivate: false)
        defer { server.serverClose() }
        #expect(server.fileDescriptor >= 0)
        #expect(server.serverAddress == address)
        #expect(try server.socket.localAddress.port == 0, "not bound yet")
        try server.serverBind()
        try server.serverActivate()
        #expect(server.serverAddress.port != 0)
    }

    @Test func allowReuseAddressSetsSOReuseAddr() throws {
        let plain = try TCPServer(.loopback(), handler: BaseRequestHandler.self)
        defer { plain.serverClose() }
        #expect(try plain.socket.option(level: SOL_SOCKET, name: SO_REUSEADDR) == 0)
        let reusing = try ReusingServer(.loopback(), handler: BaseRequestHandler.self)
        defer { reusing.serverClose() }
        #expect(try reusing.socket.option(level: SOL_SOCKET, name: SO_REUSEADDR) == 1)
    }

    @Test func allowReusePortLetsTwoServersShareAPort() throws {
        let first = try TCPServer(.loopback(), handler: BaseRequestHandler.self, bindAndActivate: false)
        defer { first.serverClose() }
        first.allowReusePort = true
        try first.serverBind()
        try first.serverActivate()
        #expect(try first.socket.option(level: SOL_SOCKET, name: SO_REUSEPORT) == 1)
        let second = try TCPServer(first.serverAddress, handler: BaseRequestHandler.self, bindAndActivate: false)
        defer { second.serverClose() }
        second.allowReusePort = true
        try second.serverBind()
        #expect(second.serverAddress == first.serverAddress)
        #expect(throws: SocketError.self) {
            _ = try TCPServer(first.serverAddress, handler: BaseRequestHandler.self)
        }
    }

    @Test func allowReusePortIsNotAppliedToUnixSockets() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let server = try UnixStreamServer(
            try directory.socketAddress("reuse.sock"), handler: BaseRequestHandler.self, bindAndActivate: false)
        defer { server.serverClose() }
        server.allowReusePort = true
        try server.serverBind()  // Linux rejects SO_REUSEPORT on AF_UNIX; setting it would throw here.
        try server.serverActivate()
        #expect(try server.socket.option(level: SOL_SOCKET, name: SO_REUSEPORT) == 0)
    }

    @Test func addressFamilyIsInferredFromTheAddress() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let unix = try UnixStreamServer(try directory.socketAddress("family.sock"), handler: BaseRequestHandler.self)
        defer { unix.serverClose() }
        #expect(unix.addressFamily == .unix)
        let udp = try UDPServer(.loopback(), handler: BaseRequestHandler.self)
        defer { udp.serverClose() }
        #expect(udp.addressFamily == .inet)
        #expect(try udp.socket.option(level: SOL_SOCKET, name: SO_TYPE) == Int32(SOCK_DGRAM.rawValue))
    }

    @Test func datagramsLongerThanMaxPacketSizeAreCutToExactlyThatSize() throws {
        final class LengthHandler: DatagramRequestHandler {
            override func handle() throws { try wfile.write("\(packet.count)") }
        }
        let server = try UDPServer(.loopback(), handler: LengthHandler.self)
        try withServing(server) { server throws in
            let big = String(repeating: "x", count: 10_000)
            #expect(try datagramRoundTrip(to: server.serverAddress, big) == "8192")
            #expect(try datagramRoundTrip(to: server.serverAddress, "short") == "5")
        }
        let small = try UDPServer(.loopback(), handler: LengthHandler.self)
        small.maxPacketSize = 100
        try withServing(small) { server throws in
            #expect(try datagramRoundTrip(to: server.serverAddress, String(repeating: "y", count: 500)) == "100")
        }
    }
}
