import Foundation
import Glibc
import Logging
import ServiceLifecycle
import SocketServer
import SocketServerLifecycle
import Testing

/// `socketserver-lifecycle-example`, built next to the test bundle: a ServiceGroup running a server.
private let examplePath: String? = {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
    for _ in 0..<4 {
        let path = directory.appendingPathComponent("SocketServerLifecycleExample").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
        directory = directory.deletingLastPathComponent()
    }
    return nil
}()

/// The example in a child process, with its stdout piped to the test.
private final class ExampleProcess {
    let process = Process()
    let output = Pipe()
    let address: SocketAddress

    init(_ arguments: [String]) throws {
        let path = try #require(examplePath, "SocketServerLifecycleExample was not built next to the tests")
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = Self.readLine(output.fileHandleForReading)
        let port = Int(line.split(separator: ":").last ?? "") ?? -1
        guard line.hasPrefix("listening on 127.0.0.1:"), port > 0 else {
            process.terminate()
            process.waitUntilExit()
            throw LifecycleTestError(description: "no listening line: \(line)")
        }
        address = .loopback(port: port)
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// The rest of stdout once the process has exited, and its exit status.
    func waitForExit() -> (status: Int32, output: String) {
        let rest = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: rest, as: UTF8.self))
    }

    private static func readLine(_ handle: FileHandle) -> String {
        var line: [UInt8] = []
        while let byte = try? handle.read(upToCount: 1), let first = byte.first, first != UInt8(ascii: "\n") {
            line.append(first)
        }
        return String(decoding: line, as: UTF8.self)
    }
}

private struct LifecycleTestError: Error, CustomStringConvertible {
    let description: String
}

/// A blocking client with a receive timeout.
private func connect(_ address: SocketAddress) throws -> Socket {
    let socket = try Socket(family: .inet, type: .stream)
    socket.timeout = .seconds(20)
    try socket.connect(to: address)
    return socket
}

/// Everything until end of file; nil when the receive timed out or failed first.
private func readAll(_ socket: Socket) -> String? {
    var bytes: [UInt8] = []
    while true {
        guard let chunk = try? socket.receive(maxLength: 4096) else { return nil }
        if chunk.isEmpty { return String(decoding: bytes, as: UTF8.self) }
        bytes += chunk
    }
}

private func readLine(_ socket: Socket) throws -> String {
    var bytes: [UInt8] = []
    while bytes.last != UInt8(ascii: "\n") {
        let chunk = try socket.receive(maxLength: 1)
        if chunk.isEmpty { break }
        bytes += chunk
    }
    return String(decoding: bytes, as: UTF8.self)
}

@Suite(.serialized)
struct SocketServerServiceTests {
    /// SIGTERM to a ServiceGroup: the request in flight is answered, nothing new is accepted, exit 0.
    @Test(arguments: ["threading", "event"])
    func sigtermDrainsInFlightRequests(mode: String) throws {
        let example = try ExampleProcess([mode, "1500"])
        let busy = try connect(example.address)
        defer { busy.close() }
        try busy.sendAll(Array("in flight\n".utf8))
        #expect(try readLine(busy) == "received\n")
        example.signal(SIGTERM)
        // The listener closes: a new connection is refused (bounded wait for the signal to arrive).
        let deadline = ContinuousClock.now + .seconds(20)
        var refused = false
        while ContinuousClock.now < deadline && !refused {
            if let probe = try? connect(example.address) {
                probe.close()
                usleep(10_000)
            } else {
                refused = true
            }
        }
        #expect(refused)
        if mode == "threading" { try busy.shutdown(.write) }
        #expect(readAll(busy)?.hasPrefix("in flight\n") == true)
        let (status, output) = example.waitForExit()
        #expect(status == 0)
        #expect(output.contains("closed: closed"))
    }

    /// SIGINT is a cancellation signal: event mode closes open connections at once, without the drain.
    @Test func sigintClosesAtOnce() throws {
        // A ten-minute reply delay and a ten-minute drain: only skipping the drain ends the connection before
        // the client's 20 s receive timeout.
        let example = try ExampleProcess(["event", "600000", "600"])
        let busy = try connect(example.address)
        defer { busy.close() }
        try busy.sendAll(Array("never answered\n".utf8))
        #expect(try readLine(busy) == "received\n")
        example.signal(SIGINT)
        #expect(readAll(busy) == "", "end of file without the reply")
        let (status, output) = example.waitForExit()
        #expect(status == 0, "\(output)")
    }

    /// In process: graceful shutdown of the group ends `run()` and closes the server.
    @Test func gracefulShutdownInAServiceGroup() async throws {
        final class Echo: StreamRequestHandler {
            override func handle() throws { try wfile.write(try rfile.readLine()) }
        }
        let server = try TCPServer(.loopback(), handler: Echo.self, mode: ThreadingMode())
        let group = ServiceGroup(
            services: [SocketServerService(server, pollInterval: .milliseconds(20))],
            gracefulShutdownSignals: [], cancellationSignals: [], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Served: a round trip succeeds once the loop runs.
            var answered = false
            for _ in 0..<200 where !answered {
                if let client = try? connect(server.serverAddress) {
                    try client.sendAll(Array("ping\n".utf8))
                    answered = (try? readLine(client)) == "ping\n"
                    client.close()
                }
                if !answered { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(answered)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(server.lifecycleState == .closed)
    }
}
