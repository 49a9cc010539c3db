import ArgumentParser
import SocketServer

/// `socketserver-demo echo`: line echo over TCP or a Unix stream socket.
struct EchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Line echo over TCP or a Unix stream socket.",
        discussion: """
            Every line a client sends (up to 64 KiB, newline included) comes back unchanged; a last line \
            without a newline is echoed when the client closes (except in event mode). Connections are \
            logged at info level and lines at debug level (default level: notice). Default port 9999, \
            default timeout 300 s. With --delay-ms the handler sleeps before each reply; in event mode that \
            sleep blocks every connection of its loop.
            Try it: socketserver-demo echo --port 9999 & printf 'hello\\n' | nc -N 127.0.0.1 9999
            """
    )

    @OptionGroup var options: ServiceOptions

    @Option(
        name: .customLong("delay-ms"),
        help: ArgumentHelp(
            "Sleep this many milliseconds before echoing each line: a slow handler (the perf harness's "
                + "slow-handler workload).",
            valueName: "ms")
    )
    var delayMilliseconds = 0

    func validate() throws {
        guard (0...60_000).contains(delayMilliseconds) else {
            throw ValidationError("--delay-ms must be between 0 and 60000.")
        }
    }

    func run() throws {
        ShutdownSignals.block()
        let context = ServiceContext(
            logger: ServiceRunner.makeLogger(level: options.logLevel ?? .notice),
            drain: try DrainNotice(),
            timeout: options.timeout(default: 300),
            mode: options.mode,
            replyDelay: delayMilliseconds > 0 ? .milliseconds(delayMilliseconds) : nil
        )
        let address = try options.address(defaultPort: 9999)
        let mode = try options.mode.makeConcurrencyMode(
            workers: options.workers, loops: options.loops, event: .stream(EventEchoHandler.self, EventEchoHandler.configuration(context)))
        let server: BaseServer =
            if options.isUnix {
                try ServiceUnixStreamServer(address, handler: EchoHandler.self, mode: mode, context: context)
            } else {
                try ServiceTCPServer(address, handler: EchoHandler.self, mode: mode, context: context)
            }
        try ServiceRunner.serve(server, context: context)
    }
}
