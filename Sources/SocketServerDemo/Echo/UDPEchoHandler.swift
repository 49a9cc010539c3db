import Logging
import SocketServer

/// Sends each datagram back to its sender.
/// The service context comes in as `dependencies`.
final class UDPEchoHandler: DependentDatagramRequestHandler<ServiceContext> {
    override func handle() throws {
        let context = dependencies
        if let delay = context.replyDelay { pause(for: delay) }
        try wfile.write(packet)
    }

    /// Replies, except to an unnamed Unix client, which has no address to reply to.
    override func finish() throws {
        let context = dependencies
        if clientAddress.family == .unix && clientAddress.path?.isEmpty != false {
            context.logger.debug("datagram from an unnamed Unix socket, not answered", metadata: ["bytes": "\(packet.count)"])
            return
        }
        try super.finish()
        guard context.logsRequests else { return }
        context.logger.info("datagram", metadata: ["client": "\(clientAddress)", "bytes": "\(packet.count)"])
    }
}
