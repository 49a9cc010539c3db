import Logging
import SocketServer

/// Line echo for `--mode async`: an async/await handler per connection, in a task on the connection's loop.
///
/// The same behaviour as the other modes: lines of up to 64 KiB (newline included) come back unchanged, a
/// longer one closes only its connection, and a last line without a newline is echoed at end of input.
/// `--timeout` is the mode's idle timeout. `--delay-ms` is `Task.sleep`, which suspends this connection only
/// (unlike `--mode event`, where the sleep blocks the whole loop).
///
/// On shutdown every line already received is answered: a read that would wait with nothing buffered then
/// ends the input (an empty read), so an idle connection closes at once; one holding part of a line waits
/// for the rest until the mode's shutdown deadline (`shutdownTimeout`, 5 s), which also cancels the task.
/// The service context comes in as `dependencies`.
final class AsyncEchoHandler: DependentAsyncStreamRequestHandler<ServiceContext> {
    /// The mode's limits for this service: `--timeout` as the idle timeout, 64 KiB lines.
    static func configuration(_ context: ServiceContext) -> EventMode.Configuration {
        EventMode.Configuration(idleTimeout: context.timeout, maxBufferedInput: 64 * 1024)
    }

    override func handle() async throws {
        var lines = 0
        var bytes = 0
        var outcome = "closed by client"
        defer { logEnd(lines: lines, bytes: bytes, outcome: outcome) }
        do {
            while true {
                let line = try await rfile.readLine(maxLength: 65536)
                if line.isEmpty { return }
                if let delay = dependencies.replyDelay { try await Task.sleep(for: delay) }
                try await wfile.write(line)
                lines += 1
                bytes += line.count
                logLine(line.count)
            }
        } catch SocketServerError.lineTooLong(let limit) {
            outcome = "line longer than \(limit) bytes"
        } catch let error as EventModeError {
            outcome = Self.describe(error)
        } catch is CancellationError {
            outcome = "server shutting down"
        } catch let error as SocketError where error.isDisconnect {
            outcome = "reset by client"
        } catch is AsyncConnectionClosed {
            outcome = "connection closed"
        }
    }

    // The logging lives in synchronous helpers: their temporaries (metadata dictionaries, interpolated
    // strings) then sit on the loop thread's stack for the call, not in `handle()`'s async frame, which every
    // idle connection keeps for its whole life.

    private func logLine(_ count: Int) {
        guard dependencies.logsLines else { return }
        dependencies.logger.debug("echo line", metadata: ["client": "\(clientAddress)", "bytes": "\(count)"])
    }

    private func logEnd(lines: Int, bytes: Int, outcome: String) {
        dependencies.logger.info(
            "echo connection",
            metadata: [
                "client": "\(clientAddress)", "lines": "\(lines)", "bytes": "\(bytes)", "end": "\(outcome)",
            ])
    }

    private static func describe(_ error: EventModeError) -> String {
        switch error {
        case .idleTimeout: "idle timeout"
        case .shutdownDeadlineExpired: "server shutting down"
        default: "\(error)"
        }
    }
}
