/// The HTTP service's settings from the command line.
struct HTTPSettings: Sendable {
    /// The served directory.
    let resolver: StaticPathResolver
    /// Whether connections may stay open between requests (the mode allows it).
    let allowsKeepAlive: Bool
    /// How long a kept-alive connection may wait for its next request (shorter than the request timeout,
    /// as Apache's `KeepAliveTimeout`): an idle connection holds a thread, worker or child meanwhile.
    let keepAliveTimeout: Duration = .seconds(5)
    /// The largest request body read and dropped to keep a connection open; larger ones close it.
    let maxDiscardedBody = 64 * 1024
}
