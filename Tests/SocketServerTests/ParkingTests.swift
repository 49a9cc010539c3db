import Foundation
import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

/// Which connections a parking handler answered, counted on the server's side.
final class AnsweredConnections: Sendable {
    private let addresses = SanitizedMutex<Set<String>>([])
    private let requests = Atomic(0)

    func record(_ address: SocketAddress) {
        addresses.withLock { _ = $0.insert("\(address)") }
        requests.add(1, ordering: .relaxed)
    }

    var connectionCount: Int { addresses.withLock { $0.count } }
    var requestCount: Int { requests.load(ordering: .relaxed) }
}

/// A minimal keep-alive HTTP responder that parks its connection between requests: each answer is
/// `ok <pid>`, so a forking test sees which process served it.
final class ParkingHTTPHandler: DependentStreamRequestHandler<AnsweredConnections> {
    override var timeout: Duration? { .seconds(10) }

    override func handle() throws {
        while true {
            let requestLine = try rfile.readLine()
            if requestLine.isEmpty { return }
            while true {
                let line = try rfile.readLine()
                if line.isEmpty { return }
                if line == Array("\r\n".utf8) || line == [UInt8(ascii: "\n")] { break }
            }
            dependencies.record(clientAddress)
            let body = "ok \(getpid())"
            try wfile.write("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            if parkConnection(idleTimeout: .seconds(5)) { return }
        }
    }
}

/// Reads one `ParkingHTTPHandler` answer (head and `Content-Length` body) from a kept-alive connection.
private func readAnswer(_ client: TestClient) throws -> String {
    var length = 0
    while true {
        let line = try client.readLine()
        if line.isEmpty { throw SocketError(operation: "recv", code: ECONNRESET) }
        if line == "\r\n" { break }
        if line.lowercased().hasPrefix("content-length:") {
            length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }
    }
    return String(decoding: try client.reader.read(length), as: UTF8.self)
}

@Suite("Parked connections (keep-alive without holding a thread, worker or child)", .serialized)
struct ParkingTests {
    /// What `ChildReport.write(to:)` puts into a pipe, read back.
    private func written(_ report: ChildReport) throws -> [UInt8] {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { for end in ends { close(end) } }
        #expect(report.write(to: ends[1]))
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = bytes.withUnsafeMutableBytes { read(ends[0], $0.baseAddress, $0.count) }
        return Array(bytes.prefix(max(count, 0)))
    }

    @Test func childReportRoundTripsAndRefusesAnythingElse() throws {
        let parked = ChildReport(parkTimeout: .milliseconds(1500), bytesReceived: 17, bytesSent: 1 << 40)
        let bytes = try written(parked)
        #expect(bytes.count == ChildReport.size)
        #expect(ChildReport(decoding: bytes) == parked)
        let closed = ChildReport(parkTimeout: nil, bytesReceived: 0, bytesSent: 3)
        #expect(ChildReport(decoding: try written(closed)) == closed)
        let huge = ChildReport(parkTimeout: .seconds(Int64.max), bytesReceived: 1, bytesSent: 1)
        #expect(ChildReport(decoding: try written(huge))?.parkTimeout != nil, "a huge timeout stays a timeout")
        var wrongMagic = bytes
        wrongMagic[0] ^= 0xff
        #expect(ChildReport(decoding: wrongMagic) == nil)
        #expect(ChildReport(decoding: Array(bytes.dropLast())) == nil)
        #expect(ChildReport(decoding: []) == nil)
    }

    @Test("wrk -c100 against a 2-worker pool: every connection is answered, and curl meanwhile within a second")
    func poolServesEveryKeepAliveConnection() throws {
        try #require(toolAvailable("wrk") && toolAvailable("curl"), "make deps installs wrk and curl")
        let answered = AnsweredConnections()
        let server = try TCPServer(
            .loopback(), handler: ParkingHTTPHandler.self, dependencies: answered, mode: ThreadPoolMode(workers: 2))
        server.logger.logLevel = .critical
        try withServing(server) { server in
            let url = "http://127.0.0.1:\(server.serverAddress.port ?? 0)/"
            let load = LoadRun(["wrk", "-t2", "-c100", "-d6s", "--timeout", "5s", url])
            defer { load.wait() }
            // The load is on: curl's answers, timed by curl itself, while wrk's 100 connections keep alive.
            #expect(eventually { answered.connectionCount >= 50 }, "wrk's connections were not served")
            var times: [Double] = []
            for _ in 0..<3 {
                let result = try runTool(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", url])
                let fields = result.output.split(separator: " ")
                #expect(fields.first == "200", "curl during the load: \(result.output) \(result.stderr)")
                times.append(fields.count == 2 ? Double(fields[1]) ?? 99 : 99)
            }
            let median = times.sorted()[1]
            #expect(
                median < 1.0,
                "curl waited \(times) s during the load: without parking it waits until wrk's 6 s are over")
            load.wait()
            #expect(load.status == 0, "wrk: \(load.output)")
        }
        // wrk's 100 connections plus curl's three.
        #expect(answered.connectionCount == 103, "answered \(answered.connectionCount) of 103 connections")
        #expect(answered.requestCount > 103)
    }

    @Test("synchronous mode: a kept-alive idle connection does not block another client")
    func synchronousModeServesOthersWhileOneIsParked() throws {
        let answered = AnsweredConnections()
        let server = try TCPServer(.loopback(), handler: ParkingHTTPHandler.self, dependencies: answered)
        try withServing(server) { server in
            let first = try TestClient(connectingTo: server.serverAddress)
            defer { first.close() }
            try first.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try readAnswer(first).hasPrefix("ok "))
            // The first connection stays open and idle; without parking the only serving thread waits on it.
            let second = try TestClient(connectingTo: server.serverAddress, timeout: .seconds(5))
            defer { second.close() }
            try second.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try readAnswer(second).hasPrefix("ok "))
            // And the first is served again on the same connection, by a fresh handler.
            try first.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try readAnswer(first).hasPrefix("ok "))
        }
        #expect(answered.connectionCount == 2)
        #expect(answered.requestCount == 3)
    }

    @Test("threading mode: no thread waits while a connection is parked")
    func threadingModeParksWithoutAThread() throws {
        let answered = AnsweredConnections()
        let mode = ThreadingMode()
        let server = try TCPServer(.loopback(), handler: ParkingHTTPHandler.self, dependencies: answered, mode: mode)
        try withServing(server) { server in
            var clients: [TestClient] = []
            defer { for client in clients { client.close() } }
            for _ in 0..<10 {
                let client = try TestClient(connectingTo: server.serverAddress)
                clients.append(client)
                try client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try readAnswer(client).hasPrefix("ok "))
            }
            #expect(eventually { mode.activeRequests == 0 }, "\(mode.activeRequests) handler threads still run")
            for client in clients {
                try client.send("GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try readAnswer(client).hasPrefix("ok "))
            }
        }
        #expect(answered.requestCount == 20)
    }

    @Test("forking mode: the parent parks the connection, and a new child serves its next request")
    func forkingModeParksInTheParent() throws {
        ModeTest.warmUpForForking()
        let answered = AnsweredConnections()
        let mode = ForkingMode()
        let server = try TCPServer(.loopback(), handler: ParkingHTTPHandler.self, dependencies: answered, mode: mode)
        let descriptorsBefore = openDescriptorCount()
        try withServing(server) { server in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            var pids: [String] = []
            for _ in 0..<3 {
                try client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                let answer = try readAnswer(client)
                #expect(answer.hasPrefix("ok "))
                pids.append(answer)
                // The child exits after parking: no child is left for an idle connection.
                #expect(eventually { mode.activeChildren.isEmpty }, "children left: \(mode.activeChildren)")
            }
            #expect(Set(pids).count == 3, "each request is served by a new child: \(pids)")
            #expect(!pids.contains("ok \(getpid())"), "the parent served a request itself")
            client.close()
        }
        #expect(eventually { openDescriptorCount() <= descriptorsBefore + 1 }, "descriptors left in the parent")
    }

    @Test("a parked connection closes after its idle timeout; parked connections close when serving stops")
    func parkedConnectionsEnd() throws {
        final class ShortParking: StreamRequestHandler {
            override func handle() throws {
                let line = try rfile.readLine()
                if line.isEmpty { return }
                try wfile.write(line)
                _ = parkConnection(idleTimeout: line == Array("short\n".utf8) ? .milliseconds(200) : .seconds(60))
            }
        }
        let server = try TCPServer(.loopback(), handler: ShortParking.self, mode: ThreadPoolMode(workers: 1))
        let serving = try ServingThread(server)
        let short = try TestClient(connectingTo: server.serverAddress)
        defer { short.close() }
        let long = try TestClient(connectingTo: server.serverAddress)
        defer { long.close() }
        try short.send("short\n")
        #expect(try short.readLine() == "short\n")
        try long.send("long\n")
        #expect(try long.readLine() == "long\n")
        // The idle timeout ends the short one: the client reads end of file.
        #expect(try short.readLine() == "")
        // Serving stops: the long one is closed too, long before its 60 s.
        server.shutdown()
        serving.join()
        #expect(server.parkedConnectionCount == 0)
        #expect(try long.readLine() == "")
        server.serverClose()
    }

    @Test("parking refuses while bytes of the next request are already buffered")
    func parkingRefusedWithBufferedInput() throws {
        final class PipelinedEcho: StreamRequestHandler {
            override func handle() throws {
                while true {
                    let line = try rfile.readLine()
                    if line.isEmpty { return }
                    try wfile.write(line)
                    if parkConnection(idleTimeout: .seconds(5)) { return }
                }
            }
        }
        let server = try TCPServer(.loopback(), handler: PipelinedEcho.self, mode: ThreadingMode())
        try withServing(server) { server in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            try client.send("one\ntwo\nthree\n")
            #expect(try client.readLine() == "one\n")
            #expect(try client.readLine() == "two\n")
            #expect(try client.readLine() == "three\n")
            try client.send("four\n")
            #expect(try client.readLine() == "four\n")
        }
    }
}

/// A load generator (wrk) running on a thread of its own while the test goes on.
final class LoadRun: @unchecked Sendable {
    private let thread: OSThread?
    private let result: SanitizedMutex<ToolResult?>
    private let failure: SanitizedMutex<String?>

    init(_ arguments: [String]) {
        let result = SanitizedMutex<ToolResult?>(nil)
        let failure = SanitizedMutex<String?>(nil)
        self.result = result
        self.failure = failure
        thread = try? OSThread {
            do {
                let outcome = try runTool(arguments, timeout: .seconds(60))
                result.withLock { $0 = outcome }
            } catch {
                failure.withLock { $0 = "\(error)" }
            }
        }
    }

    private let joined = Atomic(false)

    /// Waits for the tool to finish (once).
    func wait() {
        if joined.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged {
            thread?.join()
        }
    }

    var status: Int32? { result.withLock { $0?.status } }
    var output: String {
        result.withLock { $0.map { $0.output + $0.stderr } } ?? failure.withLock { $0 } ?? "not started"
    }
}
