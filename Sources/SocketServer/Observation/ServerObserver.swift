/// Receives what a server does, for metrics: connections, requests, queue depth, children, loop ticks.
///
/// Set one on a server before serving (`BaseServer.observer`); with none set (the default) each hook costs
/// the server a single nil check, no allocation and no call. Every method has an empty default, so an
/// observer implements only what it records. `SocketServerMetrics` implements it on swift-metrics.
///
/// ## Threads
/// The methods are called synchronously, from several threads at once, so they must be cheap and
/// thread-safe (atomics, or a metrics backend's counters); never block or call back into the server.
/// Each method says where it runs.
///
/// ## What is counted where
/// - Connections (stream servers): `connectionAccepted` once per accepted connection, on the serving thread
///   (event and async mode: on the connection's loop, once it is registered there, which behind a PROXY
///   listener is after its header was read); `connectionClosed` when it ends, with the bytes it moved: in
///   event and async mode on its loop, counting every byte read from and written to the socket (TLS records
///   included); in the blocking modes when its handler has finished, on the thread that ran it, counting
///   what its `RequestReader` received and its `RequestWriter` sent (after TLS: the application's bytes; a
///   handler that bypasses them and uses `connection` directly is not counted). A connection a handler parks
///   between requests (`parkConnection`) is one connection: closed once, when it really ends (idle past its
///   timeout, closed by the client while parked, or at shutdown), with its whole duration and the bytes of
///   every handler run. Forking mode: accepted on the serving thread, closed in the parent when the child
///   that served it has been reaped (on the serving thread or loop), with the bytes the child's reader and
///   writer counted, which the child reports to the parent as it exits (none from a child killed first).
/// - Requests: `requestStarted` and `requestFinished` around one request, on the thread or loop that runs
///   it (forking mode: in the parent, see below). A request is one handler run in the synchronous,
///   threading, pool and forking modes (a whole connection, or
///   one datagram); in event mode, one run of the handler's `bytesReceived` (stream) or `datagramReceived`
///   (datagram) callback, so a connection whose bytes arrive in three reads is three requests; in async
///   mode, one async handler run (a whole connection, or one datagram), on its loop.
/// - Rejections: see `ConnectionRejection` for where each reason is reported.
/// - Forked children: a `ForkingMode` child is its own process, with its own copy of the observer, which
///   reports nothing. The parent reports each child's request as it sees it: `requestStarted` after the
///   fork, `requestFinished` at the reap, with the child's lifetime as the duration and, for a child that
///   did not exit with status 0 (its handler threw, or a signal killed it), its `ChildExit` as the error.
///   The bytes a child moved come with its connection's close (see above). The parent also reports
///   `childProcessesChanged` and `loopTicked`.
public protocol ServerObserver: AnyObject, Sendable {
    /// A stream server accepted a connection and hands it to its mode. Runs on the serving thread.
    func connectionAccepted()
    /// A connection was refused, or accepting paused, for `reason`. `.verifyRequest` runs where
    /// `verifyRequest` ran (the serving thread, or, behind a PROXY header or TLS, the thread or loop that
    /// runs the request, after `connectionAccepted`); `.proxyHeader` and `.tlsHandshake` where the header or
    /// handshake was read; `.maxConnections` and `.descriptorExhaustion` on the serving thread.
    func connectionRejected(_ reason: ConnectionRejection)
    /// A connection reported by `connectionAccepted` ended after `duration`. `bytesReceived`/`bytesSent`
    /// are the bytes it moved (see "What is counted where"; nil where not counted). Runs on the
    /// connection's event loop, or on the thread that ran its handler.
    func connectionClosed(duration: Duration, bytesReceived: Int?, bytesSent: Int?)
    /// A handler is about to run a request (see "What is counted where"). Runs on the thread or loop that
    /// runs it.
    func requestStarted()
    /// A handler run ended after `duration`; `error` is what it threw (nil on success). Runs on the thread
    /// that ran it, before `handleError`.
    func requestFinished(duration: Duration, error: (any Error)?)
    /// A `ThreadPoolMode` queue now holds `depth` requests waiting for a worker. Runs on the serving thread
    /// (after an enqueue) or on a worker (after a dequeue).
    func threadPoolQueueDepthChanged(_ depth: Int)
    /// A `ForkingMode` server now has `count` live children. Runs on the thread that forked or reaped.
    func childProcessesChanged(_ count: Int)
    /// The serving loop handled one readiness of the listener (accept, verify, hand over) in `duration`.
    /// Runs on the serving thread, inside `serveForever`.
    func loopTicked(duration: Duration)
}

extension ServerObserver {
    /// Does nothing.
    public func connectionAccepted() {}
    /// Does nothing.
    public func connectionRejected(_ reason: ConnectionRejection) {}
    /// Does nothing.
    public func connectionClosed(duration: Duration, bytesReceived: Int?, bytesSent: Int?) {}
    /// Does nothing.
    public func requestStarted() {}
    /// Does nothing.
    public func requestFinished(duration: Duration, error: (any Error)?) {}
    /// Does nothing.
    public func threadPoolQueueDepthChanged(_ depth: Int) {}
    /// Does nothing.
    public func childProcessesChanged(_ count: Int) {}
    /// Does nothing.
    public func loopTicked(duration: Duration) {}
}
