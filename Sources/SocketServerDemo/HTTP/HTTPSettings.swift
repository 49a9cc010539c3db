/// The HTTP service's settings from the command line.
struct HTTPSettings: Sendable {
    /// The served directory.
    let resolver: StaticPathResolver
    /// Whether connections may stay open between requests (the mode allows it).
    let allowsKeepAlive: Bool
    /// The largest request body read and dropped to keep a connection open; larger ones close it.
    let maxDiscardedBody = 64 * 1024
}
