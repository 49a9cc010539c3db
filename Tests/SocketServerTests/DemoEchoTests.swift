import Foundation
import Glibc
import Testing

@testable import SocketServer

@Suite("socketserver-demo echo, driven by nc and socat", .serialized)
struct DemoEchoTests {
    @Test("echo over TCP with nc", arguments: demoModes)
    func tcpWithNetcat(mode: String) throws {
        try #require(toolAvailable("nc"), "nc (netcat-openbsd) is missing: run `make deps`")
        try withDemo(["echo", "--mode", mode, "--port", "0"]) { demo throws in
            #expect(demo.address.hasPrefix("127.0.0.1:") && demo.port > 0)
            let result = try runTool(["nc", "-N", "127.0.0.1", "\(demo.port)"], input: Array("hello\nworld\n".utf8))
            #expect(result.status == 0, "nc: \(result.stderr)")
            #expect(result.output == "hello\nworld\n")
        }
    }

    @Test("echo over TCP with socat, last line without newline", arguments: demoModes)
    func tcpWithSocat(mode: String) throws {
        try #require(toolAvailable("socat"), "socat is missing: run `make deps`")
        try withDemo(["echo", "--mode", mode, "--port", "0"]) { demo throws in
            let result = try runTool(
                ["socat", "-t", "5", "-", "TCP:127.0.0.1:\(demo.port)"], input: Array("first\nno newline".utf8))
            #expect(result.status == 0, "socat: \(result.stderr)")
            #expect(result.output == "first\nno newline")
        }
    }

    @Test("echo over a Unix stream socket with nc -U", arguments: demoModes)
    func unixWithNetcat(mode: String) throws {
        try #require(toolAvailable("nc"), "nc (netcat-openbsd) is missing: run `make deps`")
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path + "/echo.sock"
        try withDemo(["echo", "--mode", mode, "--unix", path]) { demo throws in
            #expect(demo.listeningLine == "listening on unix:\(path)")
            let result = try runTool(["nc", "-N", "-U", path], input: Array("over unix\n".utf8))
            #expect(result.status == 0, "nc: \(result.stderr)")
            #expect(result.output == "over unix\n")
        }
        #expect(!FileManager.default.fileExists(atPath: path), "the socket file is removed on shutdown")
    }

    @Test(
        "echo over IPv6 loopback", .enabled(if: ipv6LoopbackAvailable, "::1 cannot be bound on this machine"),
        arguments: demoModes)
    func ipv6(mode: String) throws {
        try #require(toolAvailable("nc"), "nc (netcat-openbsd) is missing: run `make deps`")
        try withDemo(["echo", "--mode", mode, "--host", "::1", "--port", "0"]) { demo throws in
            #expect(demo.address.hasPrefix("[::1]:") && demo.port > 0)
            let result = try runTool(["nc", "-N", "::1", "\(demo.port)"], input: Array("six\n".utf8))
            #expect(result.output == "six\n")
        }
    }

    @Test("concurrent modes serve clients that hold their connections at the same time", arguments: demoConcurrentModes)
    func simultaneousClients(mode: String) throws {
        let extra = mode == "pool" ? ["--workers", "8"] : []
        try withDemo(["echo", "--mode", mode, "--port", "0"] + extra) { demo throws in
            let clients = try (0..<6).map { _ in try TestClient(connectingTo: try demo.socketAddress()) }
            defer { for client in clients { client.close() } }
            for round in 0..<3 {
                for (index, client) in clients.enumerated() { try client.send("client \(index) round \(round)\n") }
                for (index, client) in clients.enumerated() {
                    #expect(try client.readLine() == "client \(index) round \(round)\n")
                }
            }
        }
    }

    @Test("a line over 64 KiB costs only its own connection", arguments: demoModes)
    func overlongLine(mode: String) throws {
        try withDemo(["echo", "--mode", mode, "--port", "0"]) { demo throws in
            let address = try demo.socketAddress()
            let abuser = try TestClient(connectingTo: address)
            defer { abuser.close() }
            // Sent in pieces so the server reads past its limit while the client is still sending.
            let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 16 * 1024)
            for _ in 0..<5 { try? abuser.socket.sendAll(chunk) }
            // The server closes with input unread, so the client may see a reset instead of end of file.
            #expect(((try? abuser.readToEnd()) ?? "") == "", "the connection is closed without an echo")
            let client = try TestClient(connectingTo: address)
            defer { client.close() }
            try client.send("still alive\n")
            #expect(try client.readLine() == "still alive\n")
        }
    }

    @Test("a silent client is dropped after --timeout, and the server serves the next", arguments: demoModes)
    func idleTimeout(mode: String) throws {
        try withDemo(["echo", "--mode", mode, "--port", "0", "--timeout", "0.5"]) { demo throws in
            let address = try demo.socketAddress()
            let silent = try TestClient(connectingTo: address, timeout: .seconds(15))
            defer { silent.close() }
            #expect(try silent.readToEnd() == "", "the server closes the idle connection")
            let client = try TestClient(connectingTo: address)
            defer { client.close() }
            try client.send("next\n")
            #expect(try client.readLine() == "next\n")
        }
    }

    @Test("--delay-ms sleeps before each reply (the perf harness's slow handler)")
    func delay() throws {
        try withDemo(["echo", "--port", "0", "--delay-ms", "200"]) { demo throws in
            let client = try TestClient(connectingTo: try demo.socketAddress())
            defer { client.close() }
            let started = ContinuousClock.now
            try client.send("slow\n")
            #expect(try client.readLine() == "slow\n")
            #expect(ContinuousClock.now - started >= .milliseconds(190))
        }
    }

    @Test("--log-level debug logs each connection and line to stderr, never to stdout")
    func logging() throws {
        let demo = try DemoProcess(["echo", "--port", "0", "--log-level", "debug"])
        let client = try TestClient(connectingTo: try demo.socketAddress())
        try client.send("logged\n")
        #expect(try client.readLine() == "logged\n")
        client.close()
        // The connection summary is written when the handler returns, just after the client's close.
        let deadline = ContinuousClock.now + .seconds(10)
        while !demo.standardError.contains("echo connection") && ContinuousClock.now < deadline { usleep(20_000) }
        #expect(demo.stop() == 0)
        let log = demo.standardError
        #expect(log.contains("echo line"))
        #expect(log.contains("echo connection"))
        #expect(log.contains("lines=1"))
    }
}
