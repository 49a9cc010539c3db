import Logging

/// What a service's handlers need beyond the request: the logger, the shutdown notice and the settings
/// chosen on the command line. One per process, shared by every handler (and copied into forked children).
final class ServiceContext: Sendable {
    /// Where requests are logged, at the level chosen with `--log-level`.
    let logger: Logger
    /// Whether `logger` logs at `.info`: each datagram's line (the echo handlers' per-connection lines are not
    /// checked against it; they cost the check once per connection, not per message). Read once here, as the
    /// level never changes: swift-log's own check of a disabled level copies the log handler at every call,
    /// about 150 instructions per datagram or line.
    let logsRequests: Bool
    /// Whether `logger` logs at `.debug`: each echoed line's.
    let logsLines: Bool
    /// Set once SIGINT or SIGTERM arrived.
    let drain: DrainNotice
    /// How long a connection may stay silent, and a single send may block.
    let timeout: Duration
    /// The concurrency mode in use.
    let mode: ModeOption
    /// A pause before each echo reply (`--delay-ms`), to model a slow handler.
    let replyDelay: Duration?
    /// The HTTP service's settings; nil for the echo services.
    let http: HTTPSettings?

    init(
        logger: Logger,
        drain: DrainNotice,
        timeout: Duration,
        mode: ModeOption,
        replyDelay: Duration? = nil,
        http: HTTPSettings? = nil
    ) {
        self.logger = logger
        logsRequests = logger.logLevel <= .info
        logsLines = logger.logLevel <= .debug
        self.drain = drain
        self.timeout = timeout
        self.mode = mode
        self.replyDelay = replyDelay
        self.http = http
    }
}
