import Glibc
import Logging
import SocketServer

/// Starts, announces, serves and stops a service the same way for every subcommand.
enum ServiceRunner {
    /// Sends every log line to stderr (stdout carries only the `listening on` line) at `level` and above,
    /// and returns the service's logger. Call once per process.
    static func makeLogger(level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "socketserver-demo")
    }

    /// Announces `server`, serves it until SIGINT or SIGTERM, then closes it.
    ///
    /// The `listening on ADDRESS` line is printed and flushed after the socket is bound and listening, so a
    /// client that reads it can connect at once. On a signal, the drain notice goes out first (idle
    /// connections close, busy ones finish their request), then `shutdown()` stops the accept loop, and
    /// `serverClose()` waits for the handlers the mode still runs (a datagram server keeps its socket open
    /// until then, so replies in flight still go out).
    /// - Throws: what `serveForever` throws; the server is closed either way.
    static func serve(_ server: BaseServer, context: ServiceContext) throws {
        try ShutdownSignals.watch { signal in
            context.logger.notice("shutting down", metadata: ["signal": "\(signalName(signal))"])
            context.drain.begin()
            server.shutdown()
        }
        print("listening on \(server.serverAddress)")
        fflush(nil)  // all C streams; `stdout` itself is a global Swift 6 refuses to touch
        context.logger.notice(
            "serving", metadata: ["address": "\(server.serverAddress)", "mode": "\(context.mode.rawValue)"])
        do {
            try server.serveForever()
        } catch {
            server.serverClose()
            throw error
        }
        server.serverClose()
        context.logger.notice("stopped")
    }

    private static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}
