import Logging
import Metrics
import MetricsTestKit
import SocketServer
import SocketServerMetrics
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Echoes lines; a line `fail` makes the handler throw `Refused`.
final class MetricsEcho: StreamRequestHandler {
    struct Refused: Error {}

    override func handle() throws {
        while true {
            let line = try rfile.readLine()
            if line.isEmpty { return }
            if line == Array("fail\n".utf8) { throw Refused() }
            try wfile.write(line)
        }
    }
}

/// Echoes every byte on an event loop.
final class MetricsEventEcho: EventStreamHandler {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while let line = input.readLine() { connection.write(line) }
    }
}

/// Connects, sends `text`, and reads until the server closes or `expected` bytes came back.
private func exchange(_ address: SocketAddress, _ text: String, expected: Int) throws -> String {
    let socket = try Socket(family: address.family, type: .stream)
    defer { socket.close() }
    socket.timeout = .seconds(10)
    try socket.connect(to: address)
    try socket.sendAll(Array(text.utf8))
    var reply: [UInt8] = []
    while reply.count < expected {
        let chunk = try socket.receive(maxLength: 4096)
        if chunk.isEmpty { break }
        reply += chunk
    }
    return String(decoding: reply, as: UTF8.self)
}

/// Waits, bounded, until `condition` holds.
private func eventually(within limit: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while clock.now < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

/// Serves `server` on a task for the duration of `body`, then cancels it (graceful shutdown and close).
private func serving(_ server: BaseServer, _ body: () throws -> Void) async throws {
    let task = Task { try await server.run(pollInterval: .milliseconds(50)) }
    defer { task.cancel() }
    guard eventually({ server.isServing }) else {
        Issue.record("the server did not start serving")
        return
    }
    try body()
    task.cancel()
    try await task.value
}

@Suite("SocketServerMetrics", .serialized)
struct ServerMetricsTests {
    @Test func threadPoolServerRecordsConnectionsRequestsAndErrors() async throws {
        let metrics = TestMetrics()
        let server = try TCPServer(.loopback(), handler: MetricsEcho.self, mode: ThreadPoolMode(workers: 2))
        server.logger = Logger(label: "metrics-test") { _ in SwiftLogNoOpLogHandler() }
        server.observer = ServerMetrics(dimensions: [("server", "test")], factory: metrics)
        try await serving(server) { () throws in
            #expect(try exchange(server.serverAddress, "hello\n", expected: 6) == "hello\n")
            #expect(try exchange(server.serverAddress, "fail\n", expected: 1) == "")
            #expect(eventually { (try? metrics.expectTimer("socketserver_request_duration_seconds", [("server", "test")]).values.count) == 2 })
        }
        let dims = [("server", "test")]
        #expect(try metrics.expectCounter("socketserver_connections_accepted_total", dims).totalValue == 2)
        #expect(try metrics.expectCounter("socketserver_requests_total", dims).totalValue == 2)
        #expect(try metrics.expectMeter("socketserver_connections_active", dims).lastValue == 0)
        #expect(try metrics.expectTimer("socketserver_connection_duration_seconds", dims).values.count == 2)
        #expect(try metrics.expectTimer("socketserver_request_duration_seconds", dims).values.allSatisfy { $0 >= 0 })
        #expect(try metrics.expectCounter("socketserver_request_errors_total", dims + [("type", "Refused")]).totalValue == 1)
        #expect(try metrics.expectMeter("socketserver_thread_pool_queue_depth", dims).lastValue == 0)
        #expect(try metrics.expectTimer("socketserver_loop_tick_duration_seconds", dims).values.count >= 2)
        #expect(try metrics.expectCounter("socketserver_connections_rejected_total", dims + [("reason", "verifyRequest")]).totalValue == 0)
    }

    @Test func eventModeServerRecordsBytes() async throws {
        let metrics = TestMetrics()
        let server = try TCPServer(.loopback(), eventHandler: MetricsEventEcho.self)
        server.observer = ServerMetrics(factory: metrics)
        try await serving(server) { () throws in
            for _ in 0..<2 {
                #expect(try exchange(server.serverAddress, "twelve bytes", expected: 0) == "")
                #expect(try exchange(server.serverAddress, "line\n", expected: 5) == "line\n")
            }
            #expect(eventually { (try? metrics.expectMeter("socketserver_connections_active").lastValue) == 0 })
        }
        #expect(try metrics.expectCounter("socketserver_connections_accepted_total").totalValue == 4)
        #expect(try metrics.expectCounter("socketserver_received_bytes_total").totalValue == 2 * (12 + 5))
        #expect(try metrics.expectCounter("socketserver_sent_bytes_total").totalValue == 2 * 5)
        #expect(try metrics.expectTimer("socketserver_connection_duration_seconds").values.count == 4)
    }
}
