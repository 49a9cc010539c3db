import Foundation
import Glibc
import Logging
import Testing

@testable import SocketServer

/// PROXY protocol servers in every stream mode, driven by hand-built headers over real loopback sockets.
@Suite(.serialized)
struct ProxyProtocolServerTests {
    /// What a client sees from `ProxiedAddressEchoHandler` and its siblings after `header` + `"hello\n"`.
    private func roundTrip(_ server: TCPServer, header: [UInt8]) throws -> String {
        try exchange(with: server.serverAddress, sending: header + Array("hello\n".utf8))
    }

    private func withServer(
        _ mode: ProxyTestMode,
        _ address: SocketAddress = .loopback(),
        proxy: ProxyProtocolConfiguration? = nil,
        _ body: (ProxyVerifyingServer, RecordingLogHandler.Store) throws -> Void
    ) throws {
        let watchdog = mode == .forking ? try ForkWatchdog() : nil
        defer { watchdog?.stop() }
        let (logger, store) = RecordingLogHandler.makeLogger()
        let configuration = try proxy ?? ProxyProtocolConfiguration(.auto, trustedProxies: TrustedProxy.loopback + [.unixPeers])
        let server = try mode.makeServer(address, proxy: configuration, logger: logger)
        try withServing(server) { try body($0, store) }
    }

    @Test(arguments: ProxyTestMode.allCases)
    func v1AndV2GiveTheOriginalClient(mode: ProxyTestMode) throws {
        try withServer(mode) { server, store throws in
            let v1 = ProxyHeaderBytes.v1("PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n")
            #expect(try roundTrip(server, header: v1) == "client=192.0.2.7:56324\nhello\n")
            let v2 = ProxyHeaderBytes.tcp4(from: "203.0.113.9", port: 40000, tlvs: ProxyHeaderBytes.tlv(0x01, Array("h2".utf8)))
            #expect(try roundTrip(server, header: v2) == "client=203.0.113.9:40000\nhello\n")
            let tcp6 = ProxyHeaderBytes.v2(
                family: 2,
                addresses: ProxyHeaderBytes.ipv6("2001:db8::42") + ProxyHeaderBytes.ipv6("::1")
                    + ProxyHeaderBytes.port(5555) + ProxyHeaderBytes.port(80))
            #expect(try roundTrip(server, header: tcp6) == "client=[2001:db8::42]:5555\nhello\n")
            let unix = ProxyHeaderBytes.v2(
                family: 3, addresses: ProxyHeaderBytes.unixPath("/run/c.sock") + ProxyHeaderBytes.unixPath("/run/s.sock"))
            let unixReply = try roundTrip(server, header: unix)
            #expect(unixReply == "client=unix:/run/c.sock\nhello\n", "\(unixReply.debugDescription) \(store.messages)")
            if mode != .forking {
                let verified = server.verified.withLock { $0.map(\.description) }
                #expect(verified == ["192.0.2.7:56324", "203.0.113.9:40000", "[2001:db8::42]:5555", "unix:/run/c.sock"])
            }
        }
    }

    @Test(arguments: ProxyTestMode.allCases)
    func localAndUnknownKeepThePeer(mode: ProxyTestMode) throws {
        try withServer(mode) { server, _ throws in
            let local = ProxyHeaderBytes.v2(command: 0, family: 0, addresses: [])
            let unknown = ProxyHeaderBytes.v1("PROXY UNKNOWN\r\n")
            for header in [local, unknown] {
                let client = try TestClient(connectingTo: server.serverAddress)
                defer { client.close() }
                try client.socket.sendAll(header + Array("hello\n".utf8))
                let expected = "client=\(try client.socket.localAddress)\nhello\n"
                #expect(try client.readToEnd() == expected)
            }
        }
    }

    @Test(arguments: ProxyTestMode.allCases)
    func badHeadersCloseOnlyTheirConnection(mode: ProxyTestMode) throws {
        try withServer(mode) { server, store throws in
            let cases: [(String, [UInt8])] = [
                ("missing", Array("hello\n".utf8)),
                ("malformed v1", ProxyHeaderBytes.v1("PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n")),
                ("malformed v2", Array(ProxyHeaderBytes.tcp4(from: "192.0.2.1", port: 1, tlvs: [0x01, 0x00, 0x09]))),
                ("oversized v1", ProxyHeaderBytes.v1("PROXY UNKNOWN " + String(repeating: "x", count: 200))),
            ]
            for (name, bytes) in cases {
                #expect(try exchange(with: server.serverAddress, sending: bytes).isEmpty, "\(name)")
            }
            // Cut short: the client half-closes inside the header.
            let truncated = try TestClient(connectingTo: server.serverAddress)
            try truncated.socket.sendAll(Array(ProxyHeaderBytes.tcp4(from: "192.0.2.1", port: 1).prefix(20)))
            try truncated.socket.shutdown(.write)
            #expect(try truncated.readToEnd().isEmpty)
            truncated.close()
            // The server still serves.
            let good = ProxyHeaderBytes.v1("PROXY TCP4 192.0.2.8 198.51.100.1 1000 443\r\n")
            #expect(try roundTrip(server, header: good) == "client=192.0.2.8:1000\nhello\n")
            if mode != .forking {
                let logged = { store.all.filter { $0.0 == .info && $0.1.contains("PROXY protocol") } }
                #expect(eventually { logged().count == 5 }, "\(store.all.map(\.1))")
                #expect(!store.all.contains { $0.0 >= .error })
                #expect(server.verified.withLock { $0.count } == 1)
            }
        }
    }

    @Test(arguments: [ProxyTestMode.sync, .threading, .pool, .event, .async])
    func oversizedV2IsRefusedBeforeItsBody(mode: ProxyTestMode) throws {
        let proxy = try ProxyProtocolConfiguration(.v2, trustedProxies: TrustedProxy.loopback, maxHeaderLength: 256)
        try withServer(mode, proxy: proxy) { server, store throws in
            // Declares 60000 bytes but sends only the preamble: refused from the preamble alone.
            let preamble = Array(ProxyHeaderBytes.v2(family: 1, addresses: [], length: 60000).prefix(16))
            #expect(try exchange(with: server.serverAddress, sending: preamble).isEmpty)
            #expect(eventually { store.messages.contains { $0.contains("longer than 256") } }, "\(store.messages)")
            // v1 on a v2-only listener.
            #expect(try exchange(with: server.serverAddress, sending: ProxyHeaderBytes.v1("PROXY UNKNOWN\r\n")).isEmpty)
            #expect(eventually { store.messages.contains { $0.contains("v1 header not accepted") } })
        }
    }

    @Test(arguments: [ProxyTestMode.threading, .pool, .event, .async])
    func aSilentProxyTimesOutWithoutHoldingOthers(mode: ProxyTestMode) throws {
        let proxy = try ProxyProtocolConfiguration(trustedProxies: TrustedProxy.loopback, headerTimeout: .milliseconds(300))
        try withServer(mode, proxy: proxy) { server, store throws in
            let silent = try TestClient(connectingTo: server.serverAddress)
            defer { silent.close() }
            try silent.socket.sendAll(Array("PROXY TCP4 ".utf8))
            // Another connection is served meanwhile.
            let good = ProxyHeaderBytes.v1("PROXY TCP4 192.0.2.8 198.51.100.1 1000 443\r\n")
            #expect(try roundTrip(server, header: good) == "client=192.0.2.8:1000\nhello\n")
            #expect(try silent.readToEnd().isEmpty)
            #expect(eventually { store.messages.contains { $0.contains("not received in time") } }, "\(store.messages)")
        }
    }

    @Test(arguments: ProxyTestMode.allCases)
    func untrustedPeersAreClosedUnread(mode: ProxyTestMode) throws {
        let proxy = try ProxyProtocolConfiguration(trustedProxies: [TrustedProxy("192.0.2.0/24")])
        try withServer(mode, proxy: proxy) { server, store throws in
            let header = ProxyHeaderBytes.v1("PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n")
            #expect(try roundTrip(server, header: header).isEmpty)
            if mode != .forking {
                #expect(eventually { store.messages.contains { $0.contains("is not a trusted proxy") } }, "\(store.messages)")
                #expect(server.verified.withLock { $0.isEmpty })
            }
        }
    }

    @Test(arguments: [ProxyTestMode.threading, .event])
    func verifyRequestSeesTheOriginalClient(mode: ProxyTestMode) throws {
        try withServer(mode) { server, _ throws in
            server.refusedHost.withLock { $0 = "192.0.2.66" }
            let refused = ProxyHeaderBytes.v1("PROXY TCP4 192.0.2.66 198.51.100.1 1 443\r\n")
            #expect(try roundTrip(server, header: refused).isEmpty)
            let allowed = ProxyHeaderBytes.v1("PROXY TCP4 192.0.2.67 198.51.100.1 1 443\r\n")
            #expect(try roundTrip(server, header: allowed) == "client=192.0.2.67:1\nhello\n")
        }
    }

    @Test(arguments: [ProxyTestMode.sync, .event])
    func headerInManySmallPiecesOverAUnixSocket(mode: ProxyTestMode) throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        try withServer(mode, try directory.socketAddress("proxy.sock")) { server, _ throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            let bytes = ProxyHeaderBytes.tcp4(from: "198.18.0.1", port: 1234, tlvs: ProxyHeaderBytes.tlv(0x02, Array("a.example".utf8)))
                + Array("hello\n".utf8)
            for byte in bytes {
                try client.socket.sendAll([byte])
                pause(.milliseconds(2))
            }
            #expect(try client.readToEnd() == "client=198.18.0.1:1234\nhello\n")
        }
    }

    @Test func withoutProxyProtocolNothingChanges() throws {
        let server = try ProxyVerifyingServer(.loopback(), handler: ProxiedAddressEchoHandler.self)
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            try client.send("PROXY UNKNOWN\r\n")
            #expect(try client.readLine() == "client=\(try client.socket.localAddress)\n")
            #expect(try client.readLine() == "PROXY UNKNOWN\r\n")
        }
    }
}
