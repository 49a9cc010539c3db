// A line-echo server run by a swift-service-lifecycle ServiceGroup: SIGTERM shuts it down gracefully, SIGINT
// cancels it. Used by the lifecycle tests; also a template for an application.
//
// Usage: SocketServerLifecycleExample [threading|event] [DELAY_MS] [DRAIN_SECONDS]
// Prints `listening on ADDRESS` once serving; each reply waits DELAY_MS (to hold a request in flight); event
// mode drains open connections for up to DRAIN_SECONDS (default 3) on graceful shutdown.
import Glibc
import Logging
import ServiceLifecycle
import SocketServer
import SocketServerLifecycle
import UnixSignals

final class DelayedEcho: StreamRequestHandler {
    static let delay = Duration.milliseconds(Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 0)

    override func handle() throws {
        while true {
            let line = try rfile.readLine()
            if line.isEmpty { return }
            try wfile.write("received\n")
            Thread.sleep(Self.delay)
            try wfile.write(line)
        }
    }
}

final class EventDelayedEcho: EventStreamHandler {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while let line = input.readLine() {
            connection.write("received\n")
            let reply = Array(line)
            let handle = connection.handle
            let delay = DelayedEcho.delay
            Task {
                try? await Task.sleep(for: delay)
                _ = handle.execute { $0.write(reply) }
            }
        }
    }
}

enum Thread {
    static func sleep(_ duration: Duration) {
        _ = usleep(UInt32(clamping: duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000))
    }
}

/// The example's whole life. In a function rather than at the top level: the temporaries of top-level code
/// in an async `main` are never released, which LeakSanitizer reports when the process exits.
func runExample() async throws {
    var logger = Logger(label: "socketserver-lifecycle-example")
    logger.logLevel = .notice
    let event = CommandLine.arguments.dropFirst().first == "event"
    let drainSeconds = Int64(CommandLine.arguments.dropFirst(3).first ?? "") ?? 3
    let server: TCPServer =
        event
        ? try TCPServer(.loopback(), eventHandler: EventDelayedEcho.self, configuration: .init(loops: 1, shutdownTimeout: .seconds(drainSeconds)), logger: logger)
        : try TCPServer(.loopback(), handler: DelayedEcho.self, mode: ThreadingMode(), logger: logger)
    print("listening on \(server.serverAddress)")
    fflush(nil)  // stdout is a pipe in the tests: block-buffered
    let group = ServiceGroup(
        services: [SocketServerService(server, pollInterval: .milliseconds(50))],
        gracefulShutdownSignals: [.sigterm], cancellationSignals: [.sigint], logger: logger)
    try await group.run()
    print("closed: \(server.lifecycleState)")
}

try await runExample()
