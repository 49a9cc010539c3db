import Logging
import SocketServer

/// Echoes lines until the client closes, goes quiet past the timeout, or the service shuts down.
///
/// On shutdown it leaves only between lines (nothing of a line is buffered), so a line the server received
/// is always answered.
/// The service context comes in as `dependencies`.
final class EchoHandler: DependentStreamRequestHandler<ServiceContext> {
    private var context: ServiceContext?

    override var maxLineLength: Int { 65536 }

    override func setup() throws {
        try super.setup()
        let context = dependencies
        ConnectionWaiter.prepare(connection, sendTimeout: context.timeout)
        self.context = context
    }

    override func handle() throws {
        guard let context else { return }
        // Per connection, not per line: the streams (each access is a call into the library) and the one
        // array every line is read into.
        let rfile = rfile
        let wfile = wfile
        let logsLines = context.logsLines
        let waiter = ConnectionWaiter(reader: rfile, drain: context.drain)
        var line: [UInt8] = []
        var lines = 0
        var bytes = 0
        var outcome = "closed by client"
        defer {
            context.logger.info(
                "echo connection",
                metadata: [
                    "client": "\(clientAddress)", "lines": "\(lines)", "bytes": "\(bytes)", "end": "\(outcome)",
                ])
        }
        do {
            while true {
                let next = try waiter.receive(idleTimeout: context.timeout, leaveWhenDraining: true, isFresh: lines == 0) {
                    try rfile.readLine(into: &line)
                }
                guard let count = next else {
                    outcome = "server shutting down"
                    return
                }
                if count == 0 { return }
                if let delay = context.replyDelay { pause(for: delay) }
                try wfile.write(line)
                lines += 1
                bytes += count
                if logsLines {
                    context.logger.debug("echo line", metadata: ["client": "\(clientAddress)", "bytes": "\(count)"])
                }
            }
        } catch is ConnectionIdleError {
            outcome = "idle timeout"
        } catch SocketServerError.lineTooLong(let limit) {
            outcome = "line longer than \(limit) bytes"
        } catch let error as SocketError where error.isDisconnect {
            outcome = "reset by client"
        }
    }
}
