import CoreMetrics
import SocketServer
import Synchronization

/// A `ServerObserver` that records a server's activity as swift-metrics counters, gauges and timers.
///
/// ```swift
/// let server = try TCPServer(.loopback(port: 8000), handler: Echo.self)
/// server.observer = ServerMetrics()          // the bootstrapped `MetricsSystem`
/// try server.serveForever()
/// ```
///
/// The metrics, each labelled `<prefix>_<name>` (prefix `socketserver` by default) and carrying only the
/// `dimensions` given here (never a client's address):
///
/// | Name | Kind | What |
/// |---|---|---|
/// | `connections_accepted_total` | counter | connections accepted |
/// | `connections_rejected_total` | counter, `reason` dimension | `maxConnections`, `verifyRequest`, `descriptorExhaustion`, `proxyHeader`, `tlsHandshake` |
/// | `connections_active` | meter (gauge) | accepted and not yet closed |
/// | `connection_duration_seconds` | timer | from accept (event mode: open) to close |
/// | `requests_total` | counter | requests started (handler runs; event mode: callback runs) |
/// | `request_duration_seconds` | timer | handler run time |
/// | `request_errors_total` | counter, `type` dimension | handler runs that threw, by the error's type name |
/// | `received_bytes_total`, `sent_bytes_total` | counter | bytes a connection moved, added when it closes |
/// | `thread_pool_queue_depth` | meter (gauge) | requests waiting for a `ThreadPoolMode` worker |
/// | `child_processes` | meter (gauge) | live `ForkingMode` children |
/// | `loop_tick_duration_seconds` | timer | one readiness of the listener on the serving loop |
///
/// Metric objects are made once, in `init`; error counters once per error type. Each event then costs what
/// the backend's handler costs (typically an atomic add or a lock). Safe from any thread; one instance may
/// observe several servers, which then share the metrics.
public final class ServerMetrics: ServerObserver {
    private let factory: any MetricsFactory
    private let prefix: String
    private let dimensions: [(String, String)]
    private let accepted: Counter
    private let rejected: [ConnectionRejection: Counter]
    private let active: Meter
    private let connectionDuration: Timer
    private let requests: Counter
    private let requestDuration: Timer
    private let received: Counter
    private let sent: Counter
    private let queueDepth: Meter
    private let children: Meter
    private let loopTick: Timer
    private let errorCounters = Mutex<[String: Counter]>([:])

    /// Creates the metrics on `factory`.
    ///
    /// - Parameters:
    ///   - prefix: the start of every label; `socketserver` by default.
    ///   - dimensions: added to every metric (for example `[("server", "api")]` to tell servers apart).
    ///   - factory: the backend; by default the one bootstrapped in `MetricsSystem`.
    public init(
        prefix: String = "socketserver",
        dimensions: [(String, String)] = [],
        factory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.factory = factory
        self.prefix = prefix
        self.dimensions = dimensions
        func label(_ name: String) -> String { "\(prefix)_\(name)" }
        accepted = Counter(label: label("connections_accepted_total"), dimensions: dimensions, factory: factory)
        var rejected: [ConnectionRejection: Counter] = [:]
        for reason in ConnectionRejection.allCases {
            rejected[reason] = Counter(
                label: label("connections_rejected_total"), dimensions: dimensions + [("reason", reason.rawValue)],
                factory: factory)
        }
        self.rejected = rejected
        active = Meter(label: label("connections_active"), dimensions: dimensions, factory: factory)
        connectionDuration = Timer(label: label("connection_duration_seconds"), dimensions: dimensions, factory: factory)
        requests = Counter(label: label("requests_total"), dimensions: dimensions, factory: factory)
        requestDuration = Timer(label: label("request_duration_seconds"), dimensions: dimensions, factory: factory)
        received = Counter(label: label("received_bytes_total"), dimensions: dimensions, factory: factory)
        sent = Counter(label: label("sent_bytes_total"), dimensions: dimensions, factory: factory)
        queueDepth = Meter(label: label("thread_pool_queue_depth"), dimensions: dimensions, factory: factory)
        children = Meter(label: label("child_processes"), dimensions: dimensions, factory: factory)
        loopTick = Timer(label: label("loop_tick_duration_seconds"), dimensions: dimensions, factory: factory)
    }

    /// Counts the connection and adds it to the active gauge.
    public func connectionAccepted() {
        accepted.increment()
        active.increment()
    }

    /// Counts the rejection under its reason.
    public func connectionRejected(_ reason: ConnectionRejection) {
        rejected[reason]?.increment()
    }

    /// Removes the connection from the active gauge, records its duration and adds its bytes.
    public func connectionClosed(duration: Duration, bytesReceived: Int?, bytesSent: Int?) {
        active.decrement()
        connectionDuration.recordNanoseconds(duration.nanoseconds)
        if let bytesReceived, bytesReceived > 0 { received.increment(by: bytesReceived) }
        if let bytesSent, bytesSent > 0 { sent.increment(by: bytesSent) }
    }

    /// Counts the request.
    public func requestStarted() {
        requests.increment()
    }

    /// Records the request's duration and, when it threw, counts the error under its type name.
    public func requestFinished(duration: Duration, error: (any Error)?) {
        requestDuration.recordNanoseconds(duration.nanoseconds)
        guard let error else { return }
        let type = String(describing: Swift.type(of: error))
        let counter = errorCounters.withLock { counters in
            if let counter = counters[type] { return counter }
            let counter = Counter(
                label: "\(prefix)_request_errors_total", dimensions: dimensions + [("type", type)], factory: factory)
            counters[type] = counter
            return counter
        }
        counter.increment()
    }

    /// Sets the queue-depth gauge.
    public func threadPoolQueueDepthChanged(_ depth: Int) {
        queueDepth.set(depth)
    }

    /// Sets the children gauge.
    public func childProcessesChanged(_ count: Int) {
        children.set(count)
    }

    /// Records the tick's duration.
    public func loopTicked(duration: Duration) {
        loopTick.recordNanoseconds(duration.nanoseconds)
    }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating at `Int64.max`.
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        let (total, overflowAdd) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflowAdd ? .max : total
    }
}
