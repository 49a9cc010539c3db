/// The HTTP service's settings from the command line.
struct HTTPSettings: Sendable {
    /// The served directory.
    let resolver: StaticPathResolver
    /// Whether connections may stay open between requests (the mode allows it).
    let allowsKeepAlive: Bool
    /// How long a kept-alive connection of a blocking mode may wait, parked on the server's loop, for its
    /// next request (Apache's `KeepAliveTimeout`): it holds a descriptor meanwhile, no thread or child.
    let keepAliveTimeout: Duration = .seconds(5)
    /// The largest request body read and dropped to keep a connection open; larger ones close it.
    let maxDiscardedBody = 64 * 1024
}
