import Testing

@testable import SocketServer

@Suite("Echo per server class")
struct ServerEchoTests {
    @Test func tcpEcho() throws {
        let server = try TCPServer(.loopback(), handler: LineEchoHandler.self)
        #expect(server.serverAddress.port != 0)
        #expect(server.serverAddress == (try server.socket.localAddress))
        try withServing(server) { server throws in
            for round in 0..<3 {
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("hello world \(round)\n")
                #expect(try client.readLine() == "hello world \(round)\n")
                client.close()
            }
        }
        #expect(server.fileDescriptor == -1)
    }

    @Test func udpEcho() throws {
        let server = try UDPServer(.loopback(), handler: DatagramEchoHandler.self)
        try withServing(server) { server throws in
            for round in 0..<3 {
                #expect(try datagramRoundTrip(to: server.serverAddress, "ping \(round)") == "ping \(round)")
            }
        }
    }

    @Test func unixStreamEcho() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let server = try UnixStreamServer(try directory.socketAddress("stream.sock"), handler: LineEchoHandler.self)
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("over unix\n")
            #expect(try client.readLine() == "over unix\n")
            client.close()
        }
    }

    @Test func unixDatagramEcho() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let server = try UnixDatagramServer(try directory.socketAddress("dgram.sock"), handler: DatagramEchoHandler.self)
        try withServing(server) { server throws in
            let reply = try datagramRoundTrip(
                to: server.serverAddress, "datagram", bindingTo: try directory.socketAddress("client.sock"))
            #expect(reply == "datagram")
        }
    }
}
