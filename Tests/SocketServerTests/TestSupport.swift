import Foundation
import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// Runs `server.serveForever` on its own thread for the duration of `body`, then shuts it down, joins the
/// thread and closes the server.
func withServing<Server: BaseServer, Result>(
    _ server: Server,
    pollInterval: Duration = .milliseconds(50),
    _ body: (Server) throws -> Result
) throws -> Result {
    let thread = try OSThread {
        try? server.serveForever(pollInterval: pollInterval)
    }
    defer {
        server.shutdown()
        thread.join()
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
