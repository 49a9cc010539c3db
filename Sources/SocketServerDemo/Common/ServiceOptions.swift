import ArgumentParser
import Logging
import SocketServer

/// The options every service shares: where to listen, the concurrency mode, timeouts and logging.
///
/// Defaults that differ per service (port, timeout, log level) come from the service as `ServiceDefaults`.
struct ServiceOptions: ParsableArguments {
    @Option(help: "IP address to listen on, IPv4 or IPv6 (127.0.0.1, ::1, 0.0.0.0). Default 127.0.0.1.")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free one (read it from the `listening on` line).")
    var port: Int?

    @Option(help: ArgumentHelp("Listen on this Unix socket path instead of --host/--port.", valueName: "path"))
    var unix: String?

    @Option(help: ArgumentHelp(ModeOption.helpText, valueName: "mode"))
    var mode: ModeOption = .sync

    @Option(help: "Worker threads for --mode pool.")
    var workers: Int?

    @Option(help: "Event loops (threads) for --mode event and --mode async.")
    var loops: Int?

    @Option(
        name: .customLong("reuse-threads"),
        help: "With --mode threading: keep up to N finished threads parked for the next requests.")
    var reuseThreads: Int?

    @Option(
        help: """
            Seconds a connection may stay silent (and a single send may block) before the server drops it. \
            Bounds what a slow or vanished client costs. Default: 300 for echo, 30 for http.
            """
    )
    var timeout: Double?

    @Option(
        help: ArgumentHelp(
            "Serve with N worker processes on the same listener (restarted when one dies, drained on SIGTERM); "
                + "this process binds, supervises and serves nothing itself.",
            valueName: "N")
    )
    var processes: Int?

    @Flag(
        name: .customLong("reuse-port"),
        help: "With --processes: one SO_REUSEPORT listener per worker instead of one shared listener (IP only)."
    )
    var reusePort = false

    @Option(
        name: .customLong("metrics-port"),
        help: ArgumentHelp(
            "Serve the service's metrics for Prometheus at GET /metrics on 127.0.0.1:PORT (0 picks a free port; "
                + "read it from the `metrics on` line after `listening on`). Not with --processes.",
            valueName: "port")
    )
    var metricsPort: Int?

    @Option(
        name: .customLong("log-level"),
        help: ArgumentHelp(
            "Lowest level logged to stderr. Default: notice for echo and udp-echo, info for http (which "
                + "logs every request, like python3 -m http.server).",
            valueName: "level")
    )
    var logLevel: Logger.Level?

    mutating func validate() throws {
        if unix != nil, host != nil || port != nil {
            throw ValidationError("--unix cannot be combined with --host or --port.")
        }
        if let port, !(0...65535).contains(port) {
            throw ValidationError("--port must be between 0 and 65535, not \(port).")
        }
        if let unix, unix.isEmpty || unix.utf8.count > 107 {
            throw ValidationError("--unix needs a path of 1 to 107 bytes.")
        }
        if let workers {
            guard mode.takesWorkers else { throw ValidationError("--workers applies only to --mode pool.") }
            guard (1...1024).contains(workers) else { throw ValidationError("--workers must be 1...1024.") }
        }
        if let reuseThreads {
            guard mode == .threading else { throw ValidationError("--reuse-threads applies only to --mode threading.") }
            guard (1...ThreadingMode.maxReusedThreads).contains(reuseThreads) else {
                throw ValidationError("--reuse-threads must be 1...\(ThreadingMode.maxReusedThreads).")
            }
        }
        if let loops {
            guard mode.takesLoops else { throw ValidationError("--loops applies only to --mode event and --mode async.") }
            guard (1...256).contains(loops) else { throw ValidationError("--loops must be 1...256.") }
        }
        if let processes, !(1...1024).contains(processes) {
            throw ValidationError("--processes must be 1...1024.")
        }
        if reusePort {
            guard processes != nil else { throw ValidationError("--reuse-port applies only with --processes.") }
            guard unix == nil else { throw ValidationError("--reuse-port needs an IP address, not --unix.") }
        }
        if let metricsPort {
            guard (0...65535).contains(metricsPort) else {
                throw ValidationError("--metrics-port must be between 0 and 65535, not \(metricsPort).")
            }
            guard processes == nil else {
                throw ValidationError(
                    "--metrics-port cannot be combined with --processes: each worker is a process of its own with "
                        + "its own counters; scrape one instance per process instead.")
            }
        }
        if let timeout, !(timeout > 0 && timeout <= 86_400) {
            throw ValidationError("--timeout must be more than 0 and at most 86400 seconds.")
        }
    }

    /// The address to bind: the Unix path, or host and port with the service's default port.
    /// - Throws: `ValidationError` for a host that is neither an IP address nor a resolvable name.
    func address(defaultPort: Int) throws -> SocketAddress {
        if let unix { return try SocketAddress(unixPath: unix) }
        let host = host ?? "127.0.0.1"
        do {
            return try SocketAddress(host: host, port: port ?? defaultPort)
        } catch {
            throw ValidationError("--host \(host) is not an IP address or a known host name.")
        }
    }

    /// Whether the service listens on a Unix socket.
    var isUnix: Bool { unix != nil }

    /// The context shared by a service's handlers, from these options and the service's defaults.
    func makeContext(
        defaultLogLevel: Logger.Level,
        defaultTimeout seconds: Double,
        replyDelay: Duration? = nil,
        http: HTTPSettings? = nil
    ) throws -> ServiceContext {
        ServiceContext(
            logger: ServiceRunner.makeLogger(level: logLevel ?? defaultLogLevel),
            drain: try DrainNotice(),
            timeout: timeout(default: seconds),
            mode: mode,
            replyDelay: replyDelay,
            http: http
        )
    }

    /// `--timeout` as a duration, or the service's default.
    func timeout(default seconds: Double) -> Duration {
        .milliseconds(Int64(((timeout ?? seconds) * 1000).rounded()))
    }
}
