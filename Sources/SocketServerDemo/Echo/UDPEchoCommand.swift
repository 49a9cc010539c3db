import ArgumentParser
import Logging
import SocketServer

/// `socketserver-demo udp-echo`: datagram echo over UDP or a Unix datagram socket.
struct UDPEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "udp-echo",
        abstract: "Datagram echo over UDP or a Unix datagram socket.",
        discussion: """
            Every datagram (up to 8192 bytes; longer ones are cut) goes back to its sender unchanged. A Unix \
            datagram client must bind its own socket to a path to get a reply. Datagrams are logged at info \
            level (default level: notice). Default port 9999.
            Try it: socketserver-demo udp-echo --port 9999 & echo hello | nc -u -w1 127.0.0.1 9999
            """
    )

    @OptionGroup var options: ServiceOptions

    @OptionGroup var delay: ReplyDelayOption

    func run() throws {
        ShutdownSignals.block()
        let setup = try ProcessSetup.read()
        let context = try options.makeContext(
            defaultLogLevel: .notice, defaultTimeout: 300, replyDelay: delay.replyDelay)
        let mode = try options.mode.makeConcurrencyMode(
            workers: options.workers, loops: options.loops, reuseThreads: options.reuseThreads,
            event: .datagram { EventUDPEchoHandler(dependencies: context) },
            asyncDatagram: { datagram in AsyncUDPEchoHandler(datagram, dependencies: context) })
        ClassMetadataWarmUp.prepare(UDPEchoHandler.self)
        let makeHandler: (@Sendable (HandlerContext) -> BaseRequestHandler)? =
            mode is EventMode ? nil : { @Sendable request in UDPEchoHandler(request, dependencies: context) }
        let factory = ServerFactory(type: .datagram, mode: mode, logger: context.logger, makeHandler: makeHandler)
        try ServiceRunner.run(
            options: options, setup: setup, context: context, factory: factory, defaultPort: 9999)
    }
}
