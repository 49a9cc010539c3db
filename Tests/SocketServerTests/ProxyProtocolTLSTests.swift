import Foundation
import Glibc
import Logging
import SocketServerTLS
import Testing

@testable import SocketServer

/// Records every `verifyRequest` call: the address it saw and whether the TLS handshake was done by then.
final class ProxiedTLSServer: TCPServer, @unchecked Sendable {
    let verifications = SanitizedMutex<[(address: String, secured: Bool)]>([])

    override func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool {
        let secured = request.tls != nil
        verifications.withLock { $0.append((address: "\(clientAddress)", secured: secured)) }
        return true
    }
}

/// Answers one HTTP request with `client=ADDRESS tls=VERSION`, then closes (blocking modes).
final class ClientAddressHTTPHandler: StreamRequestHandler {
    override func handle() throws {
        while true {
            let line = try rfile.readLine(maxLength: 8192)
            if line.isEmpty || line == Array("\r\n".utf8) { break }
        }
        let body = "client=\(clientAddress) tls=\(connection.tls?.protocolVersion ?? "none")\n"
        try wfile.write("HTTP/1.0 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
    }
}

/// The same on an event loop.
final class ClientAddressEventHTTPHandler: EventStreamHandler {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while let line = input.readLine() {
            guard line.elementsEqual("\r\n".utf8) else { continue }
            let body = "client=\(connection.clientAddress) tls=\(connection.tls?.protocolVersion ?? "none")\n"
            connection.write(Array("HTTP/1.0 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8))
            connection.close()
            return
        }
    }
}

/// A PROXY header followed by a TLS handshake on one connection: HAProxy (`send-proxy-v2`) in front of a
/// TLS server, and curl's own `--haproxy-protocol` over https.
@Suite("PROXY header, then TLS", .serialized)
struct ProxyProtocolTLSTests {
    /// A self-signed certificate for 127.0.0.1 in `directory`.
    static func makeCertificate(in directory: TemporaryDirectory) throws -> TLSContext {
        let result = try runTool([
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2",
            "-keyout", directory.path + "/key.pem", "-out", directory.path + "/cert.pem",
        ])
        guard result.status == 0 else { throw DemoHarnessError(description: "openssl req: \(result.stderr)") }
        return try TLSContext(
            TLSConfiguration(
                certificate: .files(certificateChain: directory.path + "/cert.pem", privateKey: directory.path + "/key.pem")))
    }

    private func makeServer(_ mode: String, versions: ProxyProtocolConfiguration.Versions, context: TLSContext) throws
        -> ProxiedTLSServer
    {
        let logger = Logger(label: "proxy-tls-test") { _ in SwiftLogNoOpLogHandler() }
        let server =
            mode == "event"
            ? try ProxiedTLSServer(.loopback(), eventHandler: ClientAddressEventHTTPHandler.self, logger: logger)
            : try ProxiedTLSServer(.loopback(), handler: ClientAddressHTTPHandler.self, mode: ThreadingMode(), logger: logger)
        server.proxyProtocol = try ProxyProtocolConfiguration(versions, trustedProxies: [TrustedProxy("127.0.0.1")])
        server.useTLS(context)
        return server
    }

    /// curl over https to `port`; the body and curl's own local port.
    private func curl(port: Int, extra: [String] = []) throws -> (body: String, localPort: String) {
        let result = try runTool(
            ["curl", "-sS", "-k", "--max-time", "20", "-w", "\n%{local_port}"] + extra + ["https://127.0.0.1:\(port)/"])
        #expect(result.status == 0, "curl: \(result.stderr)")
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        return (lines.dropLast().joined(separator: "\n"), lines.last.map(String.init) ?? "?")
    }

    @Test("HAProxy send-proxy-v2 in front of a TLS server: header first, the original client, one verifyRequest after both", arguments: ["threading", "event"])
    func haproxyInFrontOfTLS(mode: String) throws {
        try #require(toolAvailable("haproxy") && toolAvailable("curl") && toolAvailable("openssl"), "run `make deps`")
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let server = try makeServer(mode, versions: .v2, context: try Self.makeCertificate(in: directory))
        try withServing(server) { server throws in
            let haproxy = try HAProxyProcess(backend: server.serverAddress, sendProxy: "send-proxy-v2")
            defer { haproxy.stop() }
            for round in 1...2 {
                let (body, localPort) = try curl(port: haproxy.frontendPort)
                // The server's peer is HAProxy; the header (read before the handshake) names curl.
                #expect(body.hasPrefix("client=127.0.0.1:\(localPort) tls=TLSv1."), "\(body) \(haproxy.log_)")
                let verifications = server.verifications.withLock { $0 }
                #expect(verifications.count == round, "\(verifications)")
                #expect(verifications.last?.address == "127.0.0.1:\(localPort)")
                #expect(verifications.allSatisfy { $0.secured }, "verifyRequest ran before the handshake finished")
            }
        }
    }

    @Test("curl --haproxy-protocol over https: the v1 header precedes the handshake", arguments: ["threading", "event"])
    func curlHAProxyProtocolOverTLS(mode: String) throws {
        try #require(toolAvailable("curl") && toolAvailable("openssl"), "run `make deps`")
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let server = try makeServer(mode, versions: .v1, context: try Self.makeCertificate(in: directory))
        try withServing(server) { server throws in
            let port = server.serverAddress.port ?? 0
            let (body, localPort) = try curl(port: port, extra: ["--haproxy-protocol"])
            #expect(body.hasPrefix("client=127.0.0.1:\(localPort) tls=TLSv1."), "\(body)")
            #expect(server.verifications.withLock { $0.count } == 1)
            // Without the header the TLS ClientHello is not a PROXY header: refused before any handshake.
            let direct = try runTool(["curl", "-sS", "-k", "--max-time", "20", "https://127.0.0.1:\(port)/"])
            #expect(direct.status != 0)
            #expect(server.verifications.withLock { $0.count } == 1, "verifyRequest ran for a connection without a header")
        }
    }
}
