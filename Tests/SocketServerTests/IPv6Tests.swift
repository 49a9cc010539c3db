import Glibc
import Testing

@testable import SocketServer

@Suite("IPv6", .enabled(if: ipv6LoopbackAvailable, "::1 cannot be bound on this machine"))
struct IPv6Tests {
    @Test func bindsLoopbackAndShowsIt() throws {
        let server = try TCPServer(try SocketAddress(host: "::1", port: 0), handler: LineEchoHandler.self)
        #expect(server.addressFamily == .inet6)
        #expect(server.serverAddress.host == "::1")
        #expect(server.serverAddress.description.hasPrefix("[::1]:"))
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("six\n")
            #expect(try client.readLine() == "six\n")
        }
    }

    @Test func udpOverIPv6() throws {
        let server = try UDPServer(.loopbackIPv6(), handler: DatagramEchoHandler.self)
        try withServing(server) { server throws in
            #expect(try datagramRoundTrip(to: server.serverAddress, "v6 datagram") == "v6 datagram")
        }
    }

    @Test func ipv6OnlyByDefaultDualStackOnRequest() throws {
        let any6 = try SocketAddress(host: "::", port: 0)
        let v6only = try TCPServer(any6, handler: LineEchoHandler.self)
        defer { v6only.serverClose() }
        #expect(try v6only.socket.option(level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY) == 1)
        let port = v6only.serverAddress.port ?? 0
        #expect(throws: SocketError.self) { _ = try TestClient(connectingTo: .loopback(port: port)) }

        let dual = try TCPServer(any6, handler: LineEchoHandler.self, bindAndActivate: false)
        dual.dualStack = true
        try dual.serverBind()
        try dual.serverActivate()
        #expect(try dual.socket.option(level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY) == 0)
        try withServing(dual) { server throws in
            let client = try TestClient(connectingTo: .loopback(port: server.serverAddress.port ?? 0))
            try client.send("mapped\n")
            #expect(try client.readLine() == "mapped\n")
        }
    }
}

@Suite("SocketAddress")
struct SocketAddressTests {
    @Test func parsesAndDescribes() throws {
        let v4 = try SocketAddress(host: "127.0.0.1", port: 8080)
        #expect(v4.family == .inet)
        #expect(v4.description == "127.0.0.1:8080")
        let v6 = try SocketAddress(host: "[::1]", port: 443)
        #expect(v6.family == .inet6)
        #expect(v6.description == "[::1]:443")
        let unix = try SocketAddress(unixPath: "/tmp/x.sock")
        #expect(unix.family == .unix)
        #expect(unix.path == "/tmp/x.sock")
        #expect(unix.description == "unix:/tmp/x.sock")
        #expect(SocketAddress.unspecified.family == .unspecified)
        let named = try SocketAddress(host: "localhost", port: 1)
        #expect(named.family == .inet || named.family == .inet6)
        #expect(try SocketAddress(host: "", port: 5).host == "0.0.0.0")
    }

    @Test func equalityAndHashing() throws {
        let a = try SocketAddress(host: "127.0.0.1", port: 1)
        let b = try SocketAddress(host: "127.0.0.1", port: 1)
        let c = try SocketAddress(host: "127.0.0.1", port: 2)
        #expect(a == b)
        #expect(a != c)
        #expect(Set([a, b, c]).count == 2)
    }
}
