import Logging

/// What a service's handlers need beyond the request: the logger, the shutdown notice and the settings
/// chosen on the command line. One per process, shared by every handler (and copied into forked children).
final class ServiceContext: Sendable {
    /// Where requests are logged, at the level chosen with `--log-level`.
    let logger: Logger
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
        self.drain = drain
        self.timeout = timeout
        self.mode = mode
        self.replyDelay = replyDelay
        self.http = http
    }
}
