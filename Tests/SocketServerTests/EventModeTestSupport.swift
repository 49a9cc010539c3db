import CAllocationCounter
import Foundation
import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// Echoes every complete line; keeps partial lines for the next read.
final class EventLineEcho: EventStreamHandler {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while let line = input.readLine() {
            connection.write(line)
        }
    }
}

/// Echoes every byte as it arrives (the bulk and allocation workloads).
final class EventChunkEcho: EventStreamHandler {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        connection.write(input.readAll())
    }
}

/// Answers every line with the index of the loop that owns the connection.
final class EventLoopIndexReporter: EventStreamHandler {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while input.readLine() != nil {
            connection.write("\(connection.loopIndex)\n")
        }
    }
}

/// Echoes each datagram.
final class EventDatagramEcho: EventDatagramHandler {
    override func datagramReceived(_ datagram: EventDatagram) throws {
        try datagram.reply(datagram.packet)
    }
}

/// Thread-safe records of what handlers saw, for the tests that need to look inside the server.
final class EventRecorder: Sendable {
    private let closeErrors = SanitizedMutex<[String]>([])
    let maxBufferedOutput = Atomic<Int>(0)

    func recordClose(_ error: (any Error)?) {
        closeErrors.withLock { $0.append(error.map { "\($0)" } ?? "orderly") }
    }

    var closes: [String] { closeErrors.withLock { $0 } }

    func recordOutput(_ count: Int) {
        var current = maxBufferedOutput.load(ordering: .relaxed)
        while count > current {
            let (exchanged, original) = maxBufferedOutput.compareExchange(
                expected: current,
                desired: count,
                ordering: .relaxed
            )
            if exchanged { return }
            current = original
        }
    }
}

/// A line echo that reports closes and the largest output queue it saw to `EventRecorder.shared`.
final class EventRecordingEcho: EventStreamHandler {
    nonisolated(unsafe) static var recorder = EventRecorder()

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        connection.write(input.readAll())
        Self.recorder.recordOutput(connection.bufferedOutputCount)
    }

    override func connectionClosed(_ connection: EventConnection, error: (any Error)?) {
        Self.recorder.recordClose(error)
    }
}

/// Builds a TCP server in event mode on 127.0.0.1, port 0.
func makeEventServer(
    _ handler: EventStreamHandler.Type,
    _ configuration: EventMode.Configuration = EventMode.Configuration(loops: 2)
) throws -> TCPServer {
    try TCPServer(.loopback(), eventHandler: handler, configuration: configuration)
}

/// The event mode of a server built by `makeEventServer`.
func eventMode(of server: BaseServer) -> EventMode {
    guard let mode = server.mode as? EventMode else {
        Issue.record("the server is not in event mode")
        return EventMode(handler: EventStreamHandler.self)
    }
    return mode
}

/// Raises the soft descriptor limit to the hard one (for tests with many connections), and the hard one to
/// `atLeast` when the process is allowed to; returns the soft limit now in force.
func raiseDescriptorLimit(atLeast wanted: Int = 0) -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
    if Int(clamping: limit.rlim_max) < wanted {
        var raised = limit
        raised.rlim_max = rlim_t(wanted)
        raised.rlim_cur = rlim_t(wanted)
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return wanted }
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
    return Int(clamping: limit.rlim_cur)
}

/// Sends without blocking as much of `bytes` as the socket takes; returns how much that was.
func sendAvailable(_ socket: Socket, _ bytes: UnsafeRawBufferPointer) -> Int {
    let count = send(socket.fileDescriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
    return max(count, 0)
}

/// A flag one thread sets and another reads.
final class EventFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
}

/// Whether `socket` has something to read (data, or the peer's end of file or reset) within `wait`.
func isReadable(_ socket: Socket, within wait: Duration = .zero) -> Bool {
    let milliseconds = Int32(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000)
    var entry = pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0)
    while true {
        let result = poll(&entry, 1, milliseconds)
        if result < 0 && errno == EINTR { continue }
        return result > 0
    }
}

/// Serves `server` and echoes 64-byte lines through one connection: `warmUp` echoes, then `measured` more
/// while counting the process's heap allocations (the client side allocates nothing). Returns that count;
/// records an issue if the last reply differs from the message.
func countEchoAllocations(on server: TCPServer, warmUp: Int = 1_000, measured: Int = 10_000) throws -> Int64 {
    try withServing(server, pollInterval: .seconds(10)) { server throws -> Int64 in
        let client = try TestClient(connectingTo: server.serverAddress)
        defer { client.close() }
        let message = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer {
            message.deallocate()
            reply.deallocate()
        }
        message.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "a"))
        message[63] = UInt8(ascii: "\n")
        func echo(_ count: Int) throws {
            for _ in 0..<count {
                try client.socket.sendAll(UnsafeRawBufferPointer(message))
                var received = 0
                while received < 64 {
                    let count = try client.socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: reply[received...]))
                    if count == 0 { throw SocketError(operation: "recv", code: ECONNRESET) }
                    received += count
                }
            }
        }
        try echo(warmUp)
        let before = allocation_counter_allocations()
        try echo(measured)
        let after = allocation_counter_allocations()
        #expect(reply.elementsEqual(message))
        return after - before
    }
}
