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
        let waiter = ConnectionWaiter(reader: rfile, drain: context.drain)
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
                let next = try waiter.receive(until: .now + context.timeout, leaveWhenDraining: true, isFresh: lines == 0) {
                    try rfile.readLine()
                }
                guard let line = next else {
                    outcome = "server shutting down"
                    return
                }
                if line.isEmpty { return }
                if let delay = context.replyDelay { pause(for: delay) }
                try wfile.write(line)
                lines += 1
                bytes += line.count
                context.logger.debug("echo line", metadata: ["client": "\(clientAddress)", "bytes": "\(line.count)"])
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
