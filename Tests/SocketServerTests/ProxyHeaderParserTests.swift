import Glibc
import Testing

@testable import SocketServer

/// The PROXY header parser alone: every outcome, on hand-built bytes.
struct ProxyHeaderParserTests {
    private func parse(
        _ bytes: [UInt8], _ versions: ProxyProtocolConfiguration.Versions = .auto, maxLength: Int = 65551
    ) throws(ProxyProtocolError) -> ProxyHeaderParser.Outcome {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(ProxyProtocolError) in try ProxyHeaderParser.parse(raw, accepting: versions, maxLength: maxLength) }
        }
        return try result.get()
    }

    private func complete(_ bytes: [UInt8], _ versions: ProxyProtocolConfiguration.Versions = .auto) throws -> (ProxyHeader, Int) {
        guard case .complete(let header, let length) = try parse(bytes, versions) else {
            Issue.record("incomplete: \(bytes)")
            throw ProxyProtocolError.truncatedHeader
        }
        return (header, length)
    }

    @Test func v1TCP4AndTCP6() throws {
        let line = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n"
        let (header, length) = try complete(ProxyHeaderBytes.v1(line + "GET / HTTP/1.1\r\n"))
        #expect(length == line.utf8.count)
        #expect(header.version == .v1 && header.command == .proxy)
        #expect(header.source?.description == "192.0.2.7:56324")
        #expect(header.destination?.description == "198.51.100.1:443")

        let (six, _) = try complete(ProxyHeaderBytes.v1("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n"))
        #expect(six.source?.description == "[2001:db8::1]:65535")
        #expect(six.destination?.description == "[::1]:0")
    }

    @Test func v1UnknownKeepsThePeer() throws {
        let peer = SocketAddress.loopback(port: 4000)
        for line in ["PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"] {
            let (header, length) = try complete(ProxyHeaderBytes.v1(line))
            #expect(length == line.utf8.count)
            #expect(header.source == nil)
            #expect(header.clientAddress(peer: peer) == peer)
        }
    }

    @Test func everyPrefixOfAValidHeaderIsIncomplete() throws {
        let v1 = ProxyHeaderBytes.v1("PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n")
        let v2 = ProxyHeaderBytes.tcp4(from: "192.0.2.7", port: 9, tlvs: ProxyHeaderBytes.tlv(0x04, [1, 2, 3]))
        for bytes in [v1, v2] {
            for count in 0..<bytes.count {
                guard case .incomplete = try parse(Array(bytes.prefix(count))) else {
                    Issue.record("prefix of \(count) bytes not incomplete")
                    continue
                }
            }
        }
        #expect(try parse(Array(v2.prefix(16))) == .incomplete(totalLength: v2.count))
    }

    @Test(arguments: [
        ("PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\n", "no CR"),
        ("PROXY TCP4 192.0.2.7 198.51.100.1 056324 443\r\n", "leading zero"),
        ("PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n", "port too big"),
        ("PROXY TCP4 192.0.2.7  198.51.100.1 1 443\r\n", "double space"),
        ("PROXY TCP4 ::1 ::1 1 443\r\n", "IPv6 in TCP4"),
        ("PROXY TCP6 192.0.2.7 198.51.100.1 1 443\r\n", "IPv4 in TCP6"),
        ("PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n", "missing port"),
        ("PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n", "unknown protocol"),
        ("PROXY TCP4 192.0.2.7\r198.51.100.1 1 2\r\n", "CR inside"),
        // Found by FuzzProxyHeader: UNKNOWN ignores the rest of its line, but a CR may still only end it.
        ("PROXY UNKNOWN x\ry\r\n", "CR inside an UNKNOWN line"),
        ("PROXY TCP4 1.2.3.4.5 198.51.100.1 1 2\r\n", "bad address"),
    ])
    func v1Malformed(line: String, reason: String) {
        #expect(throws: ProxyProtocolError.self, "\(reason)") { try parse(ProxyHeaderBytes.v1(line)) }
        do {
            _ = try parse(ProxyHeaderBytes.v1(line))
        } catch {
            guard case .malformedHeader = error else {
                Issue.record("\(reason): \(error), not malformedHeader")
                return
            }
        }
    }

    @Test func v1LongerThan107BytesIsRefused() throws {
        let long = ProxyHeaderBytes.v1("PROXY UNKNOWN " + String(repeating: "x", count: 100))
        #expect(throws: ProxyProtocolError.headerTooLong(limit: 107)) { try parse(long) }
        // 107 bytes exactly is allowed.
        let exact = "PROXY UNKNOWN " + String(repeating: "x", count: 91) + "\r\n"
        #expect(exact.utf8.count == 107)
        let (_, length) = try complete(ProxyHeaderBytes.v1(exact))
        #expect(length == 107)
    }

    @Test func v2TCP4TCP6AndUnix() throws {
        let tcp4 = ProxyHeaderBytes.tcp4(from: "203.0.113.9", port: 40000)
        let (four, fourLength) = try complete(tcp4 + Array("hello".utf8))
        #expect(fourLength == 28)
        #expect(four.version == .v2 && four.command == .proxy)
        #expect(four.source?.description == "203.0.113.9:40000")
        #expect(four.destination?.description == "10.0.0.1:443")

        let tcp6 = ProxyHeaderBytes.v2(
            family: 2,
            addresses: ProxyHeaderBytes.ipv6("2001:db8::42") + ProxyHeaderBytes.ipv6("::1")
                + ProxyHeaderBytes.port(5555) + ProxyHeaderBytes.port(80))
        let (six, sixLength) = try complete(tcp6)
        #expect(sixLength == 16 + 36)
        #expect(six.source?.description == "[2001:db8::42]:5555")

        let unix = ProxyHeaderBytes.v2(
            family: 3, addresses: ProxyHeaderBytes.unixPath("/run/client.sock") + ProxyHeaderBytes.unixPath("/run/app.sock"))
        let (local, unixLength) = try complete(unix)
        #expect(unixLength == 16 + 216)
        #expect(local.source?.description == "unix:/run/client.sock")
        #expect(local.destination?.path == "/run/app.sock")

        let unnamed = ProxyHeaderBytes.v2(family: 3, addresses: [UInt8](repeating: 0, count: 216))
        #expect(try complete(unnamed).0.source?.description == "unix:")
    }

    @Test func v2TLVsAreKept() throws {
        let tlvs = ProxyHeaderBytes.tlv(0x01, Array("h2".utf8)) + ProxyHeaderBytes.tlv(0x02, Array("example.com".utf8))
            + ProxyHeaderBytes.tlv(0x05, [])
        let (header, length) = try complete(ProxyHeaderBytes.tcp4(from: "192.0.2.1", port: 1, tlvs: tlvs))
        #expect(length == 16 + 12 + tlvs.count)
        #expect(header.fields.map(\.type) == [0x01, 0x02, 0x05])
        #expect(header.fields[1].value == Array("example.com".utf8))
        #expect(header.fields[2].value.isEmpty)
    }

    @Test func v2LocalAndUnspecKeepThePeer() throws {
        let peer = SocketAddress.loopback(port: 7)
        let local = ProxyHeaderBytes.v2(command: 0, family: 1, addresses: ProxyHeaderBytes.ipv4("192.0.2.1")
            + ProxyHeaderBytes.ipv4("192.0.2.2") + ProxyHeaderBytes.port(1) + ProxyHeaderBytes.port(2))
        let (header, _) = try complete(local)
        #expect(header.command == .local && header.clientAddress(peer: peer) == peer)
        let bareLocal = ProxyHeaderBytes.v2(command: 0, family: 0, addresses: [])
        #expect(try complete(bareLocal).0.clientAddress(peer: peer) == peer)
        let unspec = ProxyHeaderBytes.v2(family: 0, addresses: [], tlvs: ProxyHeaderBytes.tlv(0xE0, [9]))
        let (proxied, _) = try complete(unspec)
        #expect(proxied.command == .proxy && proxied.clientAddress(peer: peer) == peer)
    }

    @Test func v2Malformed() {
        let good = ProxyHeaderBytes.tcp4(from: "192.0.2.1", port: 1)
        var badVersion = good
        badVersion[12] = 0x11
        var badCommand = good
        badCommand[12] = 0x22
        var badFamily = good
        badFamily[13] = 0x41
        let shortAddresses = ProxyHeaderBytes.v2(family: 2, addresses: [UInt8](repeating: 0, count: 20))
        let cutTLV = ProxyHeaderBytes.tcp4(from: "192.0.2.1", port: 1, tlvs: [0x01, 0x00, 0x05, 0x61])
        let halfTLVHeader = ProxyHeaderBytes.tcp4(from: "192.0.2.1", port: 1, tlvs: [0x01, 0x00])
        for (bytes, name) in [
            (badVersion, "version"), (badCommand, "command"), (badFamily, "family"), (shortAddresses, "addresses"),
            (cutTLV, "TLV value"), (halfTLVHeader, "TLV header"),
        ] {
            do {
                _ = try parse(bytes)
                Issue.record("\(name): accepted")
            } catch {
                guard case .malformedHeader = error else {
                    Issue.record("\(name): \(error)")
                    continue
                }
            }
        }
    }

    @Test func v2OversizedIsRefusedFromItsPreamble() throws {
        // The preamble alone proves it: 16 + 2000 > 1024.
        let preamble = Array(ProxyHeaderBytes.v2(family: 1, addresses: [], length: 2000).prefix(16))
        #expect(throws: ProxyProtocolError.headerTooLong(limit: 1024)) { try parse(preamble, maxLength: 1024) }
        // The format's own maximum is accepted by default.
        let huge = ProxyHeaderBytes.tcp4(from: "192.0.2.1", port: 1, tlvs: ProxyHeaderBytes.tlv(0xEE, [UInt8](repeating: 7, count: 65535 - 12 - 3)))
        #expect(huge.count == 65551)
        let (header, length) = try complete(huge)
        #expect(length == 65551 && header.fields.first?.value.count == 65520)
    }

    @Test func missingHeaderAndVersionFilters() {
        #expect(throws: ProxyProtocolError.missingHeader) { try parse(Array("GET / HTTP/1.1\r\n".utf8)) }
        #expect(throws: ProxyProtocolError.missingHeader) { try parse(Array("PROXZ".utf8)) }
        let v1 = ProxyHeaderBytes.v1("PROXY UNKNOWN\r\n")
        let v2 = ProxyHeaderBytes.v2(command: 0, family: 0, addresses: [])
        #expect(throws: ProxyProtocolError.versionNotAccepted(.v1)) { try parse(v1, .v2) }
        #expect(throws: ProxyProtocolError.versionNotAccepted(.v2)) { try parse(v2, .v1) }
        #expect((try? parse([])) == .incomplete(totalLength: nil))
    }

    @Test func trustedProxyNetworks() throws {
        let network = try TrustedProxy("10.0.0.0/8")
        #expect(network.contains(try SocketAddress(host: "10.200.3.4", port: 1)))
        #expect(!network.contains(try SocketAddress(host: "11.0.0.1", port: 1)))
        #expect(network.contains(try SocketAddress(host: "::ffff:10.1.1.1", port: 1)))
        #expect(!network.contains(try SocketAddress(unixPath: "/tmp/x")))
        let six = try TrustedProxy("2001:db8::/32")
        #expect(six.contains(try SocketAddress(host: "2001:db8:ffff::1", port: 1)))
        #expect(!six.contains(try SocketAddress(host: "2001:db9::1", port: 1)))
        #expect(six.description == "2001:db8::/32")
        #expect(try TrustedProxy("127.0.0.1").description == "127.0.0.1/32")
        #expect(try TrustedProxy("0.0.0.0/0").contains(try SocketAddress(host: "8.8.8.8", port: 1)))
        #expect(TrustedProxy.unixPeers.contains(try SocketAddress(unixPath: "/tmp/x")))
        for bad in ["10.0.0.0/33", "::/129", "example", "10.0.0.0/-1", "10.0.0.0/x", ""] {
            #expect(throws: SocketServerError.self, "\(bad)") { try TrustedProxy(bad) }
        }
    }

    @Test func configurationIsChecked() throws {
        #expect(throws: SocketServerError.self) { try ProxyProtocolConfiguration(trustedProxies: []) }
        #expect(throws: SocketServerError.self) {
            try ProxyProtocolConfiguration(trustedProxies: TrustedProxy.loopback, headerTimeout: .zero)
        }
        #expect(throws: SocketServerError.self) {
            try ProxyProtocolConfiguration(trustedProxies: TrustedProxy.loopback, maxHeaderLength: 15)
        }
        let proxy = try ProxyProtocolConfiguration(trustedProxies: TrustedProxy.loopback)
        #expect(throws: SocketServerError.self) {
            try UDPServer(.loopback(), handler: DatagramEchoHandler.self, configuration: ServerConfiguration(proxyProtocol: proxy))
        }
    }
}
