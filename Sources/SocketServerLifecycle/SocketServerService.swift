import ServiceLifecycle
import SocketServer

/// Any SocketServer server as a swift-service-lifecycle `Service`, to run in a `ServiceGroup` next to the
/// application's other services.
///
/// ```swift
/// let server = try TCPServer(.loopback(port: 8000), eventHandler: LineEcho.self)
/// let group = ServiceGroup(
///     services: [SocketServerService(server)],
///     gracefulShutdownSignals: [.sigterm], cancellationSignals: [.sigint], logger: logger)
/// try await group.run()
/// ```
///
/// `run()` serves on a thread of its own (never a thread of the cooperative pool) and returns once the server
/// is closed:
/// - **Graceful shutdown** (the group's `gracefulShutdownSignals`, or another service ending): the server
///   stops accepting at once, then `serverClose()` drains — event and async modes let open connections
///   finish for up to `EventMode.Configuration.shutdownTimeout`, threading and forking modes wait for the
///   requests in flight, a pool handles what it has queued.
/// - **Cancellation** (`cancellationSignals`, or the group cancelled): the server stops accepting and closes
///   at once — event and async modes close open connections without waiting, a pool drops its queued
///   requests; a blocking handler already running (threading, pool, forking) still returns on its own, as
///   nothing can interrupt it safely, so bound it with a timeout.
///
/// The service owns nothing but its reference to the server; the server is closed when `run()` returns,
/// whichever way.
public struct SocketServerService: Service {
    /// The server this service runs.
    public let server: BaseServer
    /// How often the serving loop runs `serviceActions()`.
    public let pollInterval: Duration

    /// A service that serves `server`; it must not be serving already.
    public init(_ server: BaseServer, pollInterval: Duration = .milliseconds(500)) {
        self.server = server
        self.pollInterval = pollInterval
    }

    /// Serves until graceful shutdown or cancellation, then closes the server as described above.
    /// - Throws: what `serveForever` throws; `SocketServerError.serverClosed` when the server was closed.
    public func run() async throws {
        let server = self.server
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await server.run(pollInterval: pollInterval)
            } onGracefulShutdown: {
                server.stopAccepting()
            }
        } onCancel: {
            server.closeWithoutDrain()
        }
    }
}
