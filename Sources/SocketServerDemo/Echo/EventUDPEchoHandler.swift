import Logging
import SocketServer

/// Datagram echo for `--mode event`: every datagram is answered on the serving thread without blocking
/// (a reply the socket cannot take at once is dropped, as the network may drop it).
final class EventUDPEchoHandler: DependentEventDatagramHandler<ServiceContext> {
    override func datagramReceived(_ datagram: EventDatagram) throws {
        let context = dependencies
        if datagram.clientAddress.family == .unix && datagram.clientAddress.path?.isEmpty != false {
            context.logger.debug(
                "datagram from an unnamed Unix socket, not answered", metadata: ["bytes": "\(datagram.packet.count)"])
            return
        }
        if let delay = context.replyDelay { pause(for: delay) }
        let sent = try datagram.reply(datagram.packet)
        guard context.logsRequests else { return }
        context.logger.info(
            "datagram",
            metadata: [
                "client": "\(datagram.clientAddress)", "bytes": "\(datagram.packet.count)",
                "reply": "\(sent ? "sent" : "dropped")",
            ])
    }
}
