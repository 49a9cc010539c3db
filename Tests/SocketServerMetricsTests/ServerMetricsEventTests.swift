import Logging
import Metrics
import MetricsTestKit
import SocketServer
import SocketServerMetrics
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The events added for issue 16's metrics: bytes in the blocking modes, requests in event and async mode,
/// and rejections behind a PROXY header, as `ServerMetrics` records them.
@Suite("SocketServerMetrics: bytes, event-mode requests, PROXY rejections", .serialized)
struct ServerMetricsEventTests {
    /// Connects, sends `bytes`, half-closes, and reads until the server closes.
    private func exchange(_ address: SocketAddress, _ bytes: [UInt8]) throws -> [UInt8] {
        let socket = try Socket(family: address.family, type: .stream)
        defer { socket.close() }
        socket.timeout = .seconds(10)
        try socket.connect(to: address)
        try socket.sendAll(bytes)
        try socket.shutdown(.write)
        var reply: [UInt8] = []
        while let chunk = try? socket.receive(maxLength: 4096), !chunk.isEmpty { reply += chunk }
        return reply
    }

    private func waitFor(_ condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            usleep(5_000)
        }
        return condition()
    }

    /// Serves on a thread of its own during `body`, then shuts down and closes.
    private func serving(_ server: TCPServer, _ body: () throws -> Void) throws {
        server.logger = Logger(label: "metrics-test") { _ in SwiftLogNoOpLogHandler() }
        let thread = try OSThread { try? server.serveForever(pollInterval: .milliseconds(50)) }
        defer {
            server.shutdown()
            thread.join()
            server.serverClose()
        }
        try body()
    }

    @Test("blocking modes count the bytes the reader and writer moved", arguments: ["sync", "threading", "pool"])
    func blockingModeBytes(mode: String) throws {
        let metrics = TestMetrics()
        let concurrency: any ConcurrencyMode =
            switch mode {
            case "threading": ThreadingMode()
            case "pool": ThreadPoolMode(workers: 2)
            default: SynchronousMode()
            }
        let server = try TCPServer(.loopback(), handler: MetricsEcho.self, mode: concurrency)
        server.observer = ServerMetrics(factory: metrics)
        try serving(server) { () throws in
            #expect(try exchange(server.serverAddress, Array("one\ntwo\n".utf8)) == Array("one\ntwo\n".utf8))
            #expect(try exchange(server.serverAddress, Array("three\n".utf8)) == Array("three\n".utf8))
            #expect(waitFor { (try? metrics.expectMeter("socketserver_connections_active").lastValue) == 0 })
        }
        #expect(try metrics.expectCounter("socketserver_received_bytes_total").totalValue == 8 + 6)
        #expect(try metrics.expectCounter("socketserver_sent_bytes_total").totalValue == 8 + 6)
        #expect(try metrics.expectCounter("socketserver_requests_total").totalValue == 2)
    }

    @Test("event mode: one request per bytesReceived run; async mode: one per async handler")
    func eventAndAsyncRequests() throws {
        let eventMetrics = TestMetrics()
        let event = try TCPServer(.loopback(), eventHandler: MetricsEventEcho.self)
        event.observer = ServerMetrics(factory: eventMetrics)
        try serving(event) { () throws in
            for _ in 0..<3 { #expect(try exchange(event.serverAddress, Array("x\n".utf8)) == Array("x\n".utf8)) }
            #expect(waitFor { (try? eventMetrics.expectMeter("socketserver_connections_active").lastValue) == 0 })
        }
        // Each client's two bytes arrive in one segment, so one callback each (at least one in any case).
        let eventRequests = try eventMetrics.expectCounter("socketserver_requests_total").totalValue
        #expect(eventRequests >= 3 && eventRequests <= 6, "\(eventRequests)")
        #expect(try eventMetrics.expectTimer("socketserver_request_duration_seconds").values.count == eventRequests)

        let asyncMetrics = TestMetrics()
        let async = try TCPServer(.loopback(), asyncHandler: MetricsAsyncEcho.self)
        async.observer = ServerMetrics(factory: asyncMetrics)
        try serving(async) { () throws in
            for _ in 0..<3 { #expect(try exchange(async.serverAddress, Array("y\n".utf8)) == Array("y\n".utf8)) }
            #expect(try exchange(async.serverAddress, Array("fail\n".utf8)) == [])
            #expect(waitFor { (try? asyncMetrics.expectTimer("socketserver_request_duration_seconds").values.count) == 4 })
        }
        #expect(try asyncMetrics.expectCounter("socketserver_requests_total").totalValue == 4)
        #expect(try asyncMetrics.expectCounter("socketserver_request_errors_total", [("type", "Refused")]).totalValue == 1)
        #expect(try asyncMetrics.expectCounter("socketserver_received_bytes_total").totalValue == 3 * 2 + 5)
    }

    @Test("a bad or missing PROXY header is a .proxyHeader rejection", arguments: ["threading", "event"])
    func proxyHeaderRejections(mode: String) throws {
        let metrics = TestMetrics()
        let server: TCPServer =
            mode == "event"
            ? try TCPServer(.loopback(), eventHandler: MetricsEventEcho.self)
            : try TCPServer(.loopback(), handler: MetricsEcho.self, mode: ThreadingMode())
        server.proxyProtocol = try ProxyProtocolConfiguration(trustedProxies: TrustedProxy.loopback)
        server.observer = ServerMetrics(factory: metrics)
        let rejected = { try? metrics.expectCounter("socketserver_connections_rejected_total", [("reason", "proxyHeader")]).totalValue }
        try serving(server) { () throws in
            #expect(try exchange(server.serverAddress, Array("GET / HTTP/1.0\r\n\r\n".utf8)) == [])
            #expect(try exchange(server.serverAddress, []) == [])
            #expect(waitFor { rejected() == 2 })
            let good = Array("PROXY TCP4 192.0.2.1 192.0.2.2 1000 2000\r\nok\n".utf8)
            #expect(try exchange(server.serverAddress, good) == Array("ok\n".utf8))
        }
        #expect(rejected() == 2)
        #expect(try metrics.expectCounter("socketserver_connections_rejected_total", [("reason", "tlsHandshake")]).totalValue == 0)
    }
}

/// Echoes lines asynchronously; `fail` throws `MetricsEcho.Refused`.
final class MetricsAsyncEcho: AsyncStreamRequestHandler {
    override func handle() async throws {
        for try await line in rfile.lines {
            if line == Array("fail\n".utf8) { throw MetricsEcho.Refused() }
            try await wfile.write(line)
        }
    }
}
