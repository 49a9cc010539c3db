import Foundation
import Glibc
import Logging
import Testing

@testable import SocketServer

/// The PROXY protocol against the real programs that send it: HAProxy (`send-proxy`, `send-proxy-v2`) in
/// front of a server in every mode, `curl --haproxy-protocol`, and the demo's `--proxy-protocol`.
@Suite(.serialized)
struct ProxyProtocolToolTests {
    init() throws {
        try #require(toolAvailable("haproxy"), "haproxy is missing: run `make deps`")
        try #require(toolAvailable("curl"), "curl is missing: run `make deps`")
    }

    /// Connects to `frontend`, sends a line, and returns what the server said plus the client's own address.
    private func throughProxy(_ frontend: SocketAddress) throws -> (reply: String, client: SocketAddress) {
        let client = try TestClient(connectingTo: frontend)
        defer { client.close() }
        try client.send("hello\n")
        let reply = try client.readToEnd()
        return (reply, try client.socket.localAddress)
    }

    @Test(arguments: ProxyTestMode.allCases, ["send-proxy", "send-proxy-v2"])
    func haproxyInFrontOfEveryMode(mode: ProxyTestMode, sendProxy: String) throws {
        let watchdog = mode == .forking ? try ForkWatchdog() : nil
        defer { watchdog?.stop() }
        let (logger, _) = RecordingLogHandler.makeLogger()
        let versions: ProxyProtocolConfiguration.Versions = sendProxy == "send-proxy" ? .v1 : .v2
        let server = try mode.makeServer(
            proxy: try ProxyProtocolConfiguration(versions, trustedProxies: [TrustedProxy("127.0.0.1")]), logger: logger)
        try withServing(server) { server throws in
            let haproxy = try HAProxyProcess(backend: server.serverAddress, sendProxy: sendProxy)
            defer { haproxy.stop() }
            for _ in 0..<3 {
                let (reply, client) = try throughProxy(haproxy.frontend)
                // The server's peer is HAProxy's own outgoing socket; the header names the real client.
                #expect(reply == "client=\(client)\nhello\n", "\(haproxy.log_)")
            }
        }
    }

    @Test func haproxyV2FromIPv6ToAUnixSocket() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let (logger, _) = RecordingLogHandler.makeLogger()
        let server = try ProxyTestMode.event.makeServer(
            try directory.socketAddress("app.sock"),
            proxy: try ProxyProtocolConfiguration(.v2, trustedProxies: [.unixPeers]), logger: logger)
        try withServing(server) { server throws in
            let haproxy = try HAProxyProcess(backend: server.serverAddress, sendProxy: "send-proxy-v2", frontendIPv6: true)
            defer { haproxy.stop() }
            let (reply, client) = try throughProxy(.loopbackIPv6(port: haproxy.frontendPort))
            #expect(client.family == .inet6)
            #expect(reply == "client=\(client)\nhello\n", "\(haproxy.log_)")
        }
    }

    @Test func haproxyHealthCheckWithoutHeaderIsRefusedAndTheServerGoesOn() throws {
        // HAProxy configured without send-proxy: the server sees no header and closes, with an .info log.
        let (logger, store) = RecordingLogHandler.makeLogger()
        let server = try ProxyTestMode.threading.makeServer(
            proxy: try ProxyProtocolConfiguration(trustedProxies: TrustedProxy.loopback), logger: logger)
        try withServing(server) { server throws in
            let haproxy = try HAProxyProcess(backend: server.serverAddress, sendProxy: "")
            defer { haproxy.stop() }
            let (reply, _) = try throughProxy(haproxy.frontend)
            #expect(reply.isEmpty)
            #expect(eventually { store.all.contains { $0.0 == .info && $0.1.contains("no PROXY header") } })
        }
    }

    @Test(arguments: ["sync", "threading", "event", "async"])
    func curlHAProxyProtocolAgainstTheDemo(mode: String) throws {
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        try withDemo(["http", "--mode", mode, "--port", "0", "--directory", fixture.root, "--proxy-protocol", "v1"]) { demo throws in
            let url = "\(demo.baseURL)/hello.txt"
            let proxied = try runTool(["curl", "-s", "--max-time", "20", "--haproxy-protocol", "-w", "\n%{local_port}", url])
            #expect(proxied.status == 0, "\(proxied.stderr)")
            let lines = proxied.output.split(separator: "\n", omittingEmptySubsequences: false)
            let localPort = lines.last.map(String.init) ?? "?"
            #expect(proxied.output.hasPrefix(try String(contentsOfFile: fixture.root + "/hello.txt", encoding: .utf8)))
            #expect(demo.waitForLog("\"GET /hello.txt HTTP/1.1\" 200"), "\(demo.standardError)")
            #expect(demo.standardError.contains("client=127.0.0.1:\(localPort)"), "\(demo.standardError)")
            // Without the header the demo closes the connection: curl gets no reply.
            let direct = try runTool(["curl", "-s", "--max-time", "20", url])
            #expect(direct.status != 0 && direct.stdout.isEmpty)
            #expect(demo.waitForLog("no PROXY header"), "\(demo.standardError)")
        }
    }

    @Test(arguments: ["threading", "event"])
    func demoBehindHAProxyLogsTheOriginalAddress(mode: String) throws {
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        try withDemo(["http", "--mode", mode, "--port", "0", "--directory", fixture.root,
                      "--proxy-protocol", "auto", "--trusted-proxy", "127.0.0.1"]) { demo throws in
            let haproxy = try HAProxyProcess(backend: try demo.socketAddress(), sendProxy: "send-proxy-v2", frontendIPv6: true)
            defer { haproxy.stop() }
            let result = try runTool([
                "curl", "-s", "--max-time", "20", "-w", "\n%{local_port}", "http://[::1]:\(haproxy.frontendPort)/hello.txt",
            ])
            #expect(result.status == 0, "\(result.stderr)")
            let localPort = result.output.split(separator: "\n").last.map(String.init) ?? "?"
            // HAProxy reached the demo over IPv4; the log names curl's IPv6 address and port.
            #expect(demo.waitForLog("client=[::1]:\(localPort)"), "\(demo.standardError)")
        }
    }

    @Test func demoEchoBehindHAProxy() throws {
        try withDemo(["echo", "--mode", "pool", "--port", "0", "--log-level", "info", "--proxy-protocol", "v1"]) { demo throws in
            let haproxy = try HAProxyProcess(backend: try demo.socketAddress(), sendProxy: "send-proxy")
            defer { haproxy.stop() }
            let client = try TestClient(connectingTo: haproxy.frontend)
            let local = try client.socket.localAddress
            try client.send("through the proxy\n")
            #expect(try client.readLine() == "through the proxy\n")
            client.close()
            // The echo service logs each connection when it ends.
            #expect(demo.waitForLog("client=\(local)"), "\(demo.standardError)")
        }
    }

    @Test func demoRefusesTrustedProxyWithoutProxyProtocol() throws {
        let result = try runTool([demoExecutablePath ?? "socketserver-demo", "echo", "--trusted-proxy", "10.0.0.0/8"])
        #expect(result.status != 0 && result.stderr.contains("--trusted-proxy needs --proxy-protocol"))
        let bad = try runTool([demoExecutablePath ?? "socketserver-demo", "echo", "--proxy-protocol", "v2", "--trusted-proxy", "nowhere"])
        #expect(bad.status != 0 && bad.stderr.contains("is not an address"))
    }
}
