import Foundation
import Glibc
import Testing

@testable import SocketServer

/// The demo's `--metrics-port`: Prometheus's text exposition scraped with curl, checked against the traffic
/// the test sent.
@Suite("socketserver-demo --metrics-port, scraped by curl", .serialized)
struct DemoMetricsTests {
    /// A demo started with `--metrics-port 0`, and where its metrics are served.
    private struct MetricsDemo {
        let demo: DemoProcess
        let metricsURL: String

        init(_ arguments: [String]) throws {
            demo = try DemoProcess(arguments + ["--metrics-port", "0"])
            let line = demo.nextStdoutLine() ?? ""
            guard line.hasPrefix("metrics on 127.0.0.1:") else {
                demo.stop()
                throw DemoHarnessError(description: "no `metrics on` line; got \"\(line)\"; stderr: \(demo.standardError)")
            }
            metricsURL = "http://\(line.dropFirst("metrics on ".count))/metrics"
        }

        /// One scrape: the samples by series (`name` or `name{labels}`), e.g. `socketserver_requests_total`.
        func scrape() throws -> [String: Double] {
            let result = try runTool(["curl", "-sS", "--max-time", "10", metricsURL])
            guard result.status == 0 else { throw DemoHarnessError(description: "curl: \(result.stderr)") }
            return Self.samples(result.output)
        }

        /// Scrapes until `condition` holds on the samples (bounded); the last scrape either way.
        func scrape(until condition: ([String: Double]) -> Bool) throws -> [String: Double] {
            var last: [String: Double] = [:]
            _ = eventually(within: .seconds(20)) {
                last = (try? scrape()) ?? [:]
                return condition(last)
            }
            return last
        }

        static func samples(_ text: String) -> [String: Double] {
            var samples: [String: Double] = [:]
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                    continue
                }
                samples[String(line[..<space])] = value
            }
            return samples
        }
    }

    private static let prefix = "socketserver_"

    @Test("echo: accepted connections, requests and bytes move by what the clients did", arguments: ["sync", "threading", "pool", "event", "async"])
    func echoCounters(mode: String) throws {
        try #require(toolAvailable("curl") && toolAvailable("nc"), "curl or nc is missing: run `make deps`")
        let metrics = try MetricsDemo(["echo", "--mode", mode, "--port", "0"])
        defer { #expect(metrics.demo.stop() == 0, "stderr: \(metrics.demo.standardError)") }
        let before = try metrics.scrape()
        #expect((before[Self.prefix + "connections_accepted_total"] ?? 0) == 0)
        let clients = 3
        let line = Array("hello metrics\n".utf8)
        for _ in 0..<clients {
            let result = try runTool(["nc", "-N", "127.0.0.1", "\(metrics.demo.port)"], input: line)
            #expect(result.output == "hello metrics\n", "nc: \(result.stderr)")
        }
        let bytes = Double(clients * line.count)
        // Blocking modes: one handler run per connection; async mode: one async handler run per connection;
        // event mode: one per `bytesReceived` run, one per connection here unless a line arrived in pieces.
        let requestsMatch = { (value: Double?) -> Bool in
            guard let value else { return false }
            return mode == "event" ? value >= Double(clients) && value <= bytes : value == Double(clients)
        }
        let after = try metrics.scrape { samples in
            samples[Self.prefix + "connections_accepted_total"] == Double(clients)
                && samples[Self.prefix + "connections_active"] == 0
                && samples[Self.prefix + "received_bytes_total"] == bytes
                && samples[Self.prefix + "sent_bytes_total"] == bytes
                && requestsMatch(samples[Self.prefix + "requests_total"])
        }
        #expect(after[Self.prefix + "connections_accepted_total"] == Double(clients), "\(after)")
        #expect(after[Self.prefix + "connections_active"] == 0, "\(after)")
        #expect(after[Self.prefix + "received_bytes_total"] == bytes, "\(after)")
        #expect(after[Self.prefix + "sent_bytes_total"] == bytes, "\(after)")
        #expect(requestsMatch(after[Self.prefix + "requests_total"]), "\(after)")
        #expect(after[Self.prefix + "connection_duration_seconds_count"] == Double(clients), "\(after)")
    }

    @Test("udp-echo: one request per datagram", arguments: ["threading", "pool", "event", "async"])
    func udpCounters(mode: String) throws {
        try #require(toolAvailable("curl"), "curl is missing: run `make deps`")
        let metrics = try MetricsDemo(["udp-echo", "--mode", mode, "--port", "0"])
        defer { #expect(metrics.demo.stop() == 0, "stderr: \(metrics.demo.standardError)") }
        let datagrams = 3
        for index in 0..<datagrams {
            #expect(try datagramRoundTrip(to: try metrics.demo.socketAddress(), "datagram \(index)") == "datagram \(index)")
        }
        let after = try metrics.scrape { $0[Self.prefix + "requests_total"] == Double(datagrams) }
        #expect(after[Self.prefix + "requests_total"] == Double(datagrams), "\(after)")
        #expect(after[Self.prefix + "request_duration_seconds_count"] == Double(datagrams), "\(after)")
    }

    @Test("http: curl's requests are counted; the scrape answers text/plain; version=0.0.4", arguments: ["threading", "pool", "event", "async"])
    func httpCounters(mode: String) throws {
        try #require(toolAvailable("curl"), "curl is missing: run `make deps`")
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        try Data("metrics\n".utf8).write(to: URL(fileURLWithPath: directory.path + "/file.txt"))
        let metrics = try MetricsDemo(["http", "--mode", mode, "--port", "0", "--directory", directory.path])
        defer { #expect(metrics.demo.stop() == 0, "stderr: \(metrics.demo.standardError)") }
        for _ in 0..<2 {
            let result = try runTool(["curl", "-sS", "--max-time", "10", "\(metrics.demo.baseURL)/file.txt"])
            #expect(result.output == "metrics\n", "curl: \(result.stderr)")
        }
        let after = try metrics.scrape { $0[Self.prefix + "connections_accepted_total"] == 2 && $0[Self.prefix + "connections_active"] == 0 }
        #expect(after[Self.prefix + "connections_accepted_total"] == 2, "\(after)")
        #expect((after[Self.prefix + "requests_total"] ?? 0) >= 2, "\(after)")
        #expect((after[Self.prefix + "sent_bytes_total"] ?? 0) > 0, "\(after)")
        let head = try runTool(["curl", "-sS", "-i", "--max-time", "10", metrics.metricsURL])
        #expect(head.output.lowercased().contains("content-type: text/plain; version=0.0.4"), "\(head.output)")
        #expect(head.output.contains("# TYPE socketserver_connections_accepted_total counter"), "\(head.output)")
        let missing = try runTool(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
            metrics.metricsURL.replacingOccurrences(of: "/metrics", with: "/other")])
        #expect(missing.output == "404")
    }

    @Test("--processes with --metrics-port is refused with a clear message and status 2")
    func workerMasterRefuses() throws {
        guard let executable = demoExecutablePath else { throw DemoHarnessError(description: "no demo binary") }
        let result = try runTool([executable, "echo", "--port", "0", "--processes", "2", "--metrics-port", "0"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("--metrics-port cannot be combined with --processes"), "\(result.stderr)")
    }
}
