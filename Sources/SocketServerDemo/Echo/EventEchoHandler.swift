import Logging
import SocketServer

/// Line echo for `--mode event`: a non-blocking handler per connection on the mode's loops.
///
/// Complete lines are echoed as they arrive; a partial line waits in the mode's input buffer (at most 64 KiB,
/// beyond which the mode closes the connection). On shutdown a connection closes as soon as it holds no
/// partial line (one that has sent nothing yet first gets to send its line, within the `shutdownTimeout`). `--delay-ms` sleeps on the loop, so in this mode it delays every connection of that loop:
/// that is what a blocking handler costs an event loop. As with the blocking handler, a last line without a
/// newline is echoed when the client closes.
final class EventEchoHandler: DependentEventStreamHandler<ServiceContext> {
    private var context: ServiceContext? { dependencies }
    private var lines = 0
    private var bytes = 0
    private var shuttingDown = false
    /// Whether any byte arrived: a connection that has sent nothing yet is not idle but about to send its
    /// first line, so a shutdown waits for it (up to the mode's `shutdownTimeout`).
    private var receivedAny = false

    /// The mode's limits for this service: `--timeout` as the idle timeout, 64 KiB lines.
    static func configuration(_ context: ServiceContext) -> EventMode.Configuration {
        EventMode.Configuration(idleTimeout: context.timeout, maxBufferedInput: 64 * 1024)
    }

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        guard let context else { return }
        receivedAny = true
        while let line = input.readLine() {
            if let delay = context.replyDelay { pause(for: delay) }
            _ = connection.write(line)
            lines += 1
            bytes += line.count
            if context.logsLines {
                context.logger.debug(
                    "echo line", metadata: ["client": "\(connection.clientAddress)", "bytes": "\(line.count)"])
            }
        }
        if shuttingDown && input.isEmpty { connection.close() }
    }

    override func inputEnded(_ input: inout EventInput, on connection: EventConnection) throws {
        if !input.isEmpty {
            let rest = input.readAll()
            _ = connection.write(rest)
            lines += 1
            bytes += rest.count
        }
        connection.close()
    }

    override func serverShuttingDown(_ connection: EventConnection) {
        shuttingDown = true
        if receivedAny && connection.bufferedInputCount == 0 { connection.close() }
    }

    override func connectionClosed(_ connection: EventConnection, error: (any Error)?) {
        let end = error.map { "\($0)" } ?? (shuttingDown ? "server shutting down" : "closed by client")
        context?.logger.info(
            "echo connection",
            metadata: [
                "client": "\(connection.clientAddress)", "lines": "\(lines)", "bytes": "\(bytes)", "end": "\(end)",
            ])
    }
}
