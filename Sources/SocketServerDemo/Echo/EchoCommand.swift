import ArgumentParser
import Logging
import SocketServer

/// `socketserver-demo echo`: line echo over TCP or a Unix stream socket.
struct EchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Line echo over TCP or a Unix stream socket.",
        discussion: """
            Every line a client sends (up to 64 KiB, newline included) comes back unchanged; a last line \
            without a newline is echoed when the client closes. Connections are \
            logged at info level and lines at debug level (default level: notice). Default port 9999, \
            default timeout 300 s. With --delay-ms the handler sleeps before each reply; in event mode that \
            sleep blocks every connection of its loop (in async mode it suspends only its own connection).
            Try it: socketserver-demo echo --port 9999 & printf 'hello\\n' | nc -N 127.0.0.1 9999
            """
    )

    @OptionGroup var options: ServiceOptions

    @OptionGroup var proxyProtocol: ProxyProtocolOption

    @OptionGroup var delay: ReplyDelayOption

    @OptionGroup var tls: TLSOptions

    @Option(
        name: .customLong("allow-uid"),
        help: ArgumentHelp("With --unix: serve only clients running as this user id (SO_PEERCRED).", valueName: "uid"))
    var allowUID: UInt32?

    func validate() throws {
        if allowUID != nil, !options.isUnix { throw ValidationError("--allow-uid needs --unix.") }
    }

    func run() throws {
        ShutdownSignals.block()
        let setup = try ProcessSetup.read()
        tls.blockReloadSignal()
        let context = try options.makeContext(
            defaultLogLevel: .notice, defaultTimeout: 300, replyDelay: delay.replyDelay)
        let mode = try options.mode.makeConcurrencyMode(
            workers: options.workers, loops: options.loops, reuseThreads: options.reuseThreads,
            event: .stream(EventEchoHandler.configuration(context)) { _ in EventEchoHandler(dependencies: context) },
            async: ModeOption.AsyncHandling(configuration: AsyncEchoHandler.configuration(context)) { connection in
                AsyncEchoHandler(connection, dependencies: context)
            })
        ClassMetadataWarmUp.prepare(EchoHandler.self)
        let makeHandler: (@Sendable (HandlerContext) -> BaseRequestHandler)? =
            mode is EventMode ? nil : { @Sendable request in EchoHandler(request, dependencies: context) }
        var factory = ServerFactory(type: .stream, mode: mode, logger: context.logger, makeHandler: makeHandler)
        factory.configuration = { unix in try proxyProtocol.serverConfiguration(unix: unix) }
        factory.allowedUID = allowUID
        factory.prepare = { server in try tls.apply(to: server) }
        try ServiceRunner.run(
            options: options, setup: setup, context: context, factory: factory, defaultPort: 9999)
    }
}
