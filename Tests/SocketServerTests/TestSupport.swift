import Foundation
import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// `serveForever` on a thread of its own. `join()` waits for it and records what it threw as an issue of the
/// test that started it, so that a server that stopped serving fails the test instead of leaving it to wait
/// for a client timeout with the cause swallowed.
final class ServingThread: Sendable {
    private final class Outcome: Sendable {
        let failure = SanitizedMutex<(any Error)?>(nil)
        let returned = Atomic(false)
    }

    private let thread: OSThread
    private let outcome: Outcome
    private let sourceLocation: SourceLocation

    init(
        _ server: BaseServer,
        pollInterval: Duration = .milliseconds(50),
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let outcome = Outcome()
        self.outcome = outcome
        self.sourceLocation = sourceLocation
        thread = try OSThread {
            do {
                try server.serveForever(pollInterval: pollInterval)
            } catch {
                outcome.failure.withLock { $0 = error }
            }
            outcome.returned.store(true, ordering: .sequentiallyConsistent)
        }
    }

    /// Whether `serveForever` has returned (or thrown).
    var hasReturned: Bool { outcome.returned.load(ordering: .sequentiallyConsistent) }

    /// What `serveForever` threw, once it has returned.
    var error: (any Error)? { outcome.failure.withLock { $0 } }

    /// Waits for the thread; records the error `serveForever` threw, if any.
    func join() {
        thread.join()
        if let error { Issue.record("serveForever threw: \(error)", sourceLocation: sourceLocation) }
    }
}

/// Runs `server.serveForever` on its own thread for the duration of `body`, then shuts it down, joins the
/// thread (recording what `serveForever` threw) and closes the server.
func withServing<Server: BaseServer, Result>(
    _ server: Server,
    pollInterval: Duration = .milliseconds(50),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (Server) throws -> Result
) throws -> Result {
    let serving = try ServingThread(server, pollInterval: pollInterval, sourceLocation: sourceLocation)
    defer {
        server.shutdown()
        serving.join()
        server.serverClose()
    }
    return try body(server)
}

/// A blocking client connection for tests, with a receive timeout so that a broken server fails the test
/// instead of hanging it.
final class TestClient {
    let socket: Socket
    let reader: RequestReader

    init(connectingTo address: SocketAddress, timeout: Duration = .seconds(10)) throws {
        socket = try Socket(family: address.family, type: .stream)
        socket.timeout = timeout
        try socket.connect(to: address)
        reader = RequestReader(socket: socket)
    }

    func send(_ text: String) throws {
        try socket.sendAll(Array(text.utf8))
    }

    func readLine() throws -> String {
        String(decoding: try reader.readLine(), as: UTF8.self)
    }

    func readToEnd() throws -> String {
        String(decoding: try reader.readToEnd(), as: UTF8.self)
    }

    func close() { socket.close() }
}

/// Sends one datagram and waits for the reply.
func datagramRoundTrip(
    to address: SocketAddress,
    _ text: String,
    bindingTo clientPath: SocketAddress? = nil
) throws -> String {
    let socket = try Socket(family: address.family, type: .datagram)
    defer { socket.close() }
    socket.timeout = .seconds(10)
    if let clientPath { try socket.bind(to: clientPath) }
    try socket.send(Array(text.utf8), to: address)
    let (reply, _) = try socket.receiveFrom(maxLength: 65536)
    return String(decoding: reply, as: UTF8.self)
}

/// A fresh temporary directory for Unix socket paths, removed by `cleanup()`.
struct TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/socketserver-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.flatMap { mkdtemp($0) }.map { String(cString: $0) }
        }
        path = made ?? "/tmp"
    }

    func socketAddress(_ name: String) throws -> SocketAddress {
        try SocketAddress(unixPath: path + "/" + name)
    }

    func cleanup() {
        _ = try? FileManager.default.removeItem(atPath: path)
    }
}

/// The number of descriptors this process has open.
func openDescriptorCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// Whether `::1` can be bound here (some containers have IPv6 off).
let ipv6LoopbackAvailable: Bool = {
    guard let socket = try? Socket(family: .inet6, type: .stream) else { return false }
    defer { socket.close() }
    return (try? socket.bind(to: .loopbackIPv6())) != nil
}()

/// Echoes lines until the client closes.
final class LineEchoHandler: StreamRequestHandler {
    override func handle() throws {
        while true {
            let line = try rfile.readLine()
            if line.isEmpty { return }
            try wfile.write(line)
        }
    }
}

/// Echoes one datagram.
final class DatagramEchoHandler: DatagramRequestHandler {
    override func handle() throws {
        try wfile.write(packet)
    }
}
