import Logging
import SocketServer

/// Datagram echo for `--mode async`: a task per datagram on one of the `--loops` event loops. A reply the
/// socket cannot take at once is dropped, as the network may drop it. `--delay-ms` is `Task.sleep`, which
/// suspends this datagram's handler only (unlike `--mode event`, where the sleep blocks the serving loop).
/// The service context comes in as `dependencies`.
final class AsyncUDPEchoHandler: DependentAsyncDatagramRequestHandler<ServiceContext> {
    override func handle() async throws {
        let context = dependencies
        if clientAddress.family == .unix && clientAddress.path?.isEmpty != false {
            context.logger.debug("datagram from an unnamed Unix socket, not answered", metadata: ["bytes": "\(packet.count)"])
            return
        }
        if let delay = context.replyDelay { try await Task.sleep(for: delay) }
        let sent = try reply(packet)
        guard context.logsRequests else { return }
        context.logger.info(
            "datagram",
            metadata: [
                "client": "\(clientAddress)", "bytes": "\(packet.count)", "reply": "\(sent ? "sent" : "dropped")",
            ])
    }
}
