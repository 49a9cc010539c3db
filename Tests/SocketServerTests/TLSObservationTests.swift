import Foundation
import Glibc
import Logging
import SocketServerTLS
import Testing

@testable import SocketServer

/// A failed TLS handshake reaches the observer as `.tlsHandshake`, and a good connection is not rejected.
@Suite("Server observation: TLS handshake failures", .serialized)
struct TLSObservationTests {
    @Test("a plaintext client is a .tlsHandshake rejection; an openssl s_client is served", arguments: ["threading", "event", "async"])
    func handshakeFailureIsReported(mode: String) throws {
        try #require(toolAvailable("openssl"), "openssl is missing: run `make deps`")
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let context = try ProxyProtocolTLSTests.makeCertificate(in: directory)
        let logger = Logger(label: "tls-observation-test") { _ in SwiftLogNoOpLogHandler() }
        let server: TCPServer =
            switch mode {
            case "event": try TCPServer(.loopback(), eventHandler: QuitEventEcho.self, logger: logger)
            case "async": try TCPServer(.loopback(), asyncHandler: QuitAsyncEcho.self, logger: logger)
            default: try TCPServer(.loopback(), handler: QuitEcho.self, mode: ThreadingMode(), logger: logger)
            }
        server.useTLS(context)
        let observer = CountingObserver()
        server.observer = observer
        try withServing(server) { server throws in
            let plain = try TestClient(connectingTo: server.serverAddress)
            try plain.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect((try? plain.readToEnd()).map { !$0.contains("HTTP") } ?? true)
            plain.close()
            #expect(eventually { observer.counts.rejected[.tlsHandshake] == 1 }, "\(observer.counts)")
            let good = try runTool(
                ["openssl", "s_client", "-connect", "127.0.0.1:\(server.serverAddress.port ?? 0)", "-quiet"],
                input: Array("over tls\nquit\n".utf8))
            #expect(good.output.hasPrefix("over tls\n"), "\(good.stderr)")
            #expect(eventually { observer.counts.closed == 2 }, "\(observer.counts)")
        }
        let counts = observer.counts
        #expect(counts.rejected == [.tlsHandshake: 1], "\(counts)")
        #expect(counts.accepted == 2 && counts.closed == 2, "\(counts)")
    }
}

/// Echoes lines until `quit`, then closes (so that `openssl s_client -quiet` ends).
final class QuitEcho: StreamRequestHandler {
    override func handle() throws {
        while true {
            let line = try rfile.readLine()
            if line.isEmpty || line == Array("quit\n".utf8) { return }
            try wfile.write(line)
        }
    }
}

/// The same on an event loop.
final class QuitEventEcho: EventStreamHandler {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while let line = input.readLine() {
            if line.elementsEqual("quit\n".utf8) { return connection.close() }
            connection.write(line)
        }
    }
}

/// The same as an async handler.
final class QuitAsyncEcho: AsyncStreamRequestHandler {
    override func handle() async throws {
        for try await line in rfile.lines {
            if line == Array("quit\n".utf8) { return }
            try await wfile.write(line)
        }
    }
}
