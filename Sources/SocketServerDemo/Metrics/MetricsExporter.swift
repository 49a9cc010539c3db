import CoreMetrics
import Logging
import Prometheus
import SocketServer
import SocketServerMetrics

/// `--metrics-port`: the service's metrics for Prometheus, served at `GET /metrics` on 127.0.0.1.
///
/// `start` bootstraps swift-prometheus as the process's swift-metrics backend (once per process: the demo
/// runs one service per process), makes the `ServerMetrics` observer the service's server reports to, and
/// serves the registry's text exposition (`text/plain; version=0.0.4`) from a small `TCPServer` of this
/// library in `ThreadingMode`, run by a thread of its own. The exporter owns that server and its thread:
/// `stop()` shuts the server down, waits for the thread and closes the listener. A scrape costs one short
/// connection and one walk over the registry; a silent or slow scraper is dropped after 5 s.
final class MetricsExporter: Sendable {
    /// The observer to set on the service's server.
    let observer: ServerMetrics
    /// Where `GET /metrics` is served.
    var address: SocketAddress { server.serverAddress }

    private let server: TCPServer
    private let thread: OSThread

    private init(observer: ServerMetrics, server: TCPServer, thread: OSThread) {
        self.observer = observer
        self.server = server
        self.thread = thread
    }

    /// Bootstraps the backend, binds 127.0.0.1:`port` (0 picks a free port) and starts serving.
    /// - Throws: `SocketError` from binding (for example `EADDRINUSE`).
    static func start(port: Int, logger: Logger) throws -> MetricsExporter {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let server = try TCPServer(
            try SocketAddress(host: "127.0.0.1", port: port), mode: ThreadingMode(), logger: logger
        ) { context in
            PrometheusScrapeHandler(context, dependencies: registry)
        }
        let thread: OSThread
        do {
            thread = try OSThread {
                do {
                    try server.serveForever()
                } catch {
                    logger.error("metrics server stopped", metadata: ["error": "\(error)"])
                }
            }
        } catch {
            server.serverClose()
            throw error
        }
        return MetricsExporter(observer: ServerMetrics(), server: server, thread: thread)
    }

    /// Stops serving, waits for the serving thread and the scrapes in flight, and closes the listener.
    /// Call once, from any thread but the exporter's own.
    func stop() {
        server.shutdown()
        thread.join()
        server.serverClose()
    }
}
