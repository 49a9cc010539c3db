import Dispatch
import Glibc
import Logging
import SocketServer

/// Starts, announces, serves and stops a service the same way for every subcommand.
enum ServiceRunner {
    /// Sends every log line to stderr (stdout carries only the `listening on` line) at `level` and above,
    /// and returns the service's logger, whose lines all carry `pid=` (a master, its workers and a restarted
    /// process share one stderr). Call once per process.
    static func makeLogger(level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "socketserver-demo")
        logger[metadataKey: "pid"] = "\(getpid())"
        return logger
    }

    /// Runs the service the way the command line and the environment ask: as the master of `--processes`
    /// workers (`WorkerMaster`), or as one server around an inherited listener or its own address.
    /// - Throws: what building or serving the server throws.
    static func run(
        options: ServiceOptions,
        setup: ProcessSetup,
        context: ServiceContext,
        factory: ServerFactory,
        defaultPort: Int
    ) throws {
        if let processes = options.processes, !setup.isWorker {
            try WorkerMaster(options: options, setup: setup, context: context, factory: factory.forListenersOnly)
                .run(workers: processes, defaultPort: defaultPort)
            return
        }
        let server: TCPServer
        if let listener = setup.inherited.first {
            for extra in setup.inherited.dropFirst() { extra.close() }
            server = try factory.adopting(listener)
        } else {
            server = try factory.binding(try options.address(defaultPort: defaultPort))
        }
        let metrics: MetricsExporter
        do {
            guard let port = options.metricsPort else { return try serve(server, context: context, setup: setup) }
            metrics = try MetricsExporter.start(port: port, logger: context.logger)
        } catch {
            server.serverClose()
            throw error
        }
        defer { metrics.stop() }
        server.observer = metrics.observer
        try serve(server, context: context, setup: setup, metrics: metrics)
    }

    /// Announces `server`, serves it until SIGINT or SIGTERM (or a successful SIGUSR2 restart), then closes
    /// it.
    ///
    /// The `listening on ADDRESS` line is printed and flushed after the socket is bound and listening, so a
    /// client that reads it can connect at once (a worker prints none: its master speaks for the group);
    /// then `READY=1` goes to whoever started this process. On SIGUSR2 (not in a worker) the program
    /// re-executes itself with the listener inherited (`ProcessRestart`) and, once the new process serves,
    /// this one stops accepting and drains as on SIGTERM. On a signal, the drain notice goes out first (idle
    /// connections close, busy ones finish their request), then `shutdown()` stops the accept loop, and
    /// `serverClose()` waits for the handlers the mode still runs (a datagram server keeps its socket open
    /// until then, so replies in flight still go out).
    /// - Throws: what `serveForever` throws; the server is closed either way.
    ///
    /// With `metrics` (`--metrics-port`), a `metrics on ADDRESS` line follows `listening on`.
    static func serve(
        _ server: TCPServer, context: ServiceContext, setup: ProcessSetup, metrics: MetricsExporter? = nil
    ) throws {
        let logger = context.logger
        // Built here, on the serving thread before it serves: the restart runs on a thread of its own while
        // a forking server forks, and making these arrays there (their first `[TCPServer]`, a lazy global)
        // took runtime locks outside `ForkExclusion`: seen under ThreadSanitizer, a child forked meanwhile
        // spun for ever in the once of the array's metadata.
        let servers = [server]
        let arguments = CommandLine.arguments
        let restart: (@Sendable () -> Bool)? =
            setup.isWorker
            ? nil
            : { @Sendable in
                do {
                    try ProcessRestart.reexecute(servers: servers, arguments: arguments, logger: logger)
                    return true
                } catch {
                    ForkExclusion.excludingForks {
                        logger.error("restart failed; serving on", metadata: ["error": "\(error)"])
                    }
                    return false
                }
            }
        let notifier = setup.notifier
        try ShutdownSignals.watch(restart: restart) { signal in
            // All of it while no forking server forks (a child would inherit the logger's or the runtime's
            // locks held); only the wait for `serveForever` to return is outside.
            var waiter: DispatchSemaphore?
            ForkExclusion.excludingForks {
                if signal == SIGUSR2 {
                    logger.notice("restarted: draining")
                } else {
                    logger.notice("shutting down", metadata: ["signal": "\(signalName(signal))"])
                    notifier.stopping()
                }
                context.drain.begin()
                waiter = server.beginShutdown()
            }
            waiter?.wait()
        }
        if !setup.isWorker { print("listening on \(server.serverAddress)") }
        if let metrics { print("metrics on \(metrics.address)") }
        fflush(nil)  // all C streams; `stdout` itself is a global Swift 6 refuses to touch
        context.logger.notice(
            "serving",
            metadata: ["address": "\(server.serverAddress)", "mode": "\(context.mode.rawValue)"])
        notifier.ready()
        do {
            try server.serveForever()
        } catch {
            server.serverClose()
            throw error
        }
        server.serverClose()
        context.logger.notice("stopped")
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGUSR2: "SIGUSR2"
        default: "signal \(signal)"
        }
    }
}
