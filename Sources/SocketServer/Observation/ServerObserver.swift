/// Receives what a server does, for metrics: connections, requests, queue depth, children, loop ticks.
///
/// Set one on a server before serving (`BaseServer.observer`); with none set (the default) each hook costs
/// the server a single nil check, no allocation and no call. Every method has an empty default, so an
/// observer implements only what it records. `SocketServerMetrics` implements it on swift-metrics.
///
/// ## Threads
/// The methods are called synchronously, from several threads at once, so they must be cheap and
/// thread-safe (atomics, or a metrics backend's counters); never block or call back into the server.
/// Each method says where it runs. Nothing is reported from a forked child (its own process).
///
/// ## What is counted where
/// - Connections (stream servers): `connectionAccepted` once per accepted connection, on the serving thread;
///   `connectionClosed` when it ends (event mode: on its loop, with the bytes it moved; blocking modes: when
///   its handler has finished, on the thread that ran it, without byte counts; forking mode: not reported).
/// - Requests (synchronous, threading and pool modes; one per handler run, datagrams included):
///   `requestStarted` and `requestFinished` on the thread that runs the handler. Event mode has no requests,
///   only connections and bytes.
public protocol ServerObserver: AnyObject, Sendable {
    /// A stream server accepted a connection and hands it to its mode. Runs on the serving thread.
    func connectionAccepted()
    /// A connection was refused, or accepting paused, for `reason`. `.verifyRequest` runs where
    /// `verifyRequest` ran (the serving thread, or, behind a PROXY header or TLS, the thread that runs the
    /// request, after `connectionAccepted`); `.maxConnections` and `.descriptorExhaustion` on the serving
    /// thread.
    func connectionRejected(_ reason: ConnectionRejection)
    /// A connection reported by `connectionAccepted` ended after `duration`. `bytesReceived`/`bytesSent`
    /// are the bytes read from and written to its socket (event mode), nil where not counted. Runs on the
    /// connection's event loop, or on the thread that ran its handler.
    func connectionClosed(duration: Duration, bytesReceived: Int?, bytesSent: Int?)
    /// A handler is about to run a request. Runs on the thread that runs it.
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
