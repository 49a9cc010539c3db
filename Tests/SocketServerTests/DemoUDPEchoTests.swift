import Foundation
import Glibc
import Testing

@testable import SocketServer

/// Every mode udp-echo runs in: the stream services' modes and `async` (an async datagram handler).
private let demoDatagramModes = demoModes + ["async"]

@Suite("socketserver-demo udp-echo, driven by a datagram client", .serialized)
struct DemoUDPEchoTests {
    @Test("echo over UDP", arguments: demoDatagramModes)
    func udp(mode: String) throws {
        try withDemo(["udp-echo", "--mode", mode, "--port", "0"]) { demo throws in
            #expect(demo.address.hasPrefix("127.0.0.1:") && demo.port > 0)
            for round in 0..<3 {
                #expect(try datagramRoundTrip(to: try demo.socketAddress(), "ping \(round)") == "ping \(round)")
            }
        }
    }

    @Test(
        "echo over UDP on IPv6 loopback", .enabled(if: ipv6LoopbackAvailable, "::1 cannot be bound on this machine"),
        arguments: demoDatagramModes)
    func udpIPv6(mode: String) throws {
        try withDemo(["udp-echo", "--mode", mode, "--host", "::1", "--port", "0"]) { demo throws in
            #expect(demo.address.hasPrefix("[::1]:"))
            #expect(try datagramRoundTrip(to: try demo.socketAddress(), "six") == "six")
        }
    }

    @Test("echo over a Unix datagram socket", arguments: demoDatagramModes)
    func unixDatagram(mode: String) throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path + "/udp.sock"
        try withDemo(["udp-echo", "--mode", mode, "--unix", path]) { demo throws in
            #expect(demo.listeningLine == "listening on unix:\(path)")
            let reply = try datagramRoundTrip(
                to: try demo.socketAddress(), "datagram", bindingTo: try directory.socketAddress("client.sock"))
            #expect(reply == "datagram")
        }
    }

    @Test("datagrams longer than 8192 bytes come back cut to 8192")
    func oversized() throws {
        try withDemo(["udp-echo", "--port", "0"]) { demo throws in
            let socket = try Socket(family: .inet, type: .datagram)
            defer { socket.close() }
            socket.timeout = .seconds(10)
            try socket.send([UInt8](repeating: 7, count: 9000), to: try demo.socketAddress())
            let (reply, _) = try socket.receiveFrom(maxLength: 65536)
            #expect(reply.count == 8192)
        }
    }

    @Test("an unnamed Unix client gets no reply, and the server keeps serving")
    func unnamedUnixClient() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        try withDemo(["udp-echo", "--unix", directory.path + "/udp.sock"]) { demo throws in
            let address = try demo.socketAddress()
            let unnamed = try Socket(family: .unix, type: .datagram)
            defer { unnamed.close() }
            try unnamed.send(Array("nobody to answer".utf8), to: address)
            let reply = try datagramRoundTrip(
                to: address, "named", bindingTo: try directory.socketAddress("client.sock"))
            #expect(reply == "named")
        }
    }
}
