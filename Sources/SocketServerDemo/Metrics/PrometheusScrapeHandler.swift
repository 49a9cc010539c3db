import Prometheus
import SocketServer

/// Answers one HTTP/1.x request per connection: `GET /metrics` (or `HEAD`) with the registry's text
/// exposition, anything else with 404 or 405; then closes. The request head is bounded (8 KiB a line, 64
/// lines) and so is the time a client may take (5 s a read), so a bad scraper costs only its connection.
final class PrometheusScrapeHandler: DependentStreamRequestHandler<PrometheusCollectorRegistry> {
    override var maxLineLength: Int { 8192 }

    override func setup() throws {
        try super.setup()
        connection.timeout = .seconds(5)
    }

    override func handle() throws {
        let requestLine = try rfile.readLine()
        if requestLine.isEmpty { return }  // connected and closed without a request (a port probe)
        var headerLines = 0
        while headerLines < 64 {
            let line = try rfile.readLine()
            if line.isEmpty || line == [13, 10] || line == [10] { break }
            headerLines += 1
        }
        let parts = requestLine.split(separator: UInt8(ascii: " "))
        guard parts.count == 3 else { return try reply(400, "Bad Request", body: [], head: false) }
        let method = String(decoding: parts[0], as: UTF8.self)
        let path = String(decoding: parts[1], as: UTF8.self)
        guard method == "GET" || method == "HEAD" else {
            return try reply(405, "Method Not Allowed", body: [], head: false, extra: "Allow: GET, HEAD\r\n")
        }
        guard path == "/metrics" || path.hasPrefix("/metrics?") else {
            return try reply(404, "Not Found", body: Array("not found; try /metrics\n".utf8), head: method == "HEAD")
        }
        var body: [UInt8] = []
        body.reserveCapacity(4096)
        dependencies.emit(into: &body)
        try reply(200, "OK", body: body, head: method == "HEAD", type: "text/plain; version=0.0.4; charset=utf-8")
    }

    private func reply(
        _ status: Int, _ reason: String, body: [UInt8], head: Bool,
        type: String = "text/plain; charset=utf-8", extra: String = ""
    ) throws {
        let header =
            "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\n"
            + extra + "Connection: close\r\n\r\n"
        try wfile.write(header)
        if !head { try wfile.write(body) }
    }
}
