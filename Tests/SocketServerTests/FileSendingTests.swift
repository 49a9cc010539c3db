import Foundation
import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// A temporary file of random bytes, open for reading; the descriptor closes with the object.
final class RandomFile: Sendable {
    let path: String
    let bytes: [UInt8]
    let descriptor: Int32
    private let directory: TemporaryDirectory

    init(size: Int) throws {
        directory = TemporaryDirectory()
        path = directory.path + "/random.bin"
        let random = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
        defer { try? random.close() }
        bytes = Array(try random.read(upToCount: size) ?? Data())
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw SocketError(operation: "open", code: errno) }
    }

    deinit {
        close(descriptor)
        directory.cleanup()
    }
}

/// Reads until end of file with a small receive buffer, pausing between reads at first: a slow reader,
/// so that the sender's socket buffer fills and sending has to wait for it.
private func readSlowly(_ client: TestClient, pauses: Int = 40) throws -> [UInt8] {
    var received: [UInt8] = []
    var reads = 0
    while true {
        let chunk = try client.socket.receive(maxLength: 16 * 1024)
        if chunk.isEmpty { return received }
        received += chunk
        reads += 1
        if reads < pauses { pause(.milliseconds(5)) }
    }
}

private func connectWithSmallBuffer(_ address: SocketAddress) throws -> TestClient {
    let client = try TestClient(connectingTo: address, timeout: .seconds(30))
    try client.socket.setOption(level: SOL_SOCKET, name: SO_RCVBUF, value: 16 * 1024)
    return client
}

/// The file the sending handlers send, set by each test before it connects.
private let sharedFile = SanitizedMutex<RandomFile?>(nil)

/// The region each test sends: from byte 1,000 to 1,000 from the end.
private func region(of file: RandomFile) -> FileRegion {
    FileRegion(descriptor: file.descriptor, offset: 1000, count: file.bytes.count - 2000, owner: file)
}

private func expected(_ file: RandomFile) -> [UInt8] {
    Array("head\n".utf8) + Array(file.bytes[1000..<(file.bytes.count - 1000)]) + Array("tail\n".utf8)
}

final class BlockingFileHandler: StreamRequestHandler {
    override var timeout: Duration? { .seconds(30) }

    override func handle() throws {
        guard let file = sharedFile.withLock({ $0 }) else { return }
        try wfile.sendFile(region(of: file), after: Array("head\n".utf8))
        try wfile.write("tail\n")
    }
}

/// What the event handler saw while its file was on its way.
final class SendObservations: Sendable {
    let notWritableAfterSend = Atomic(false)
    let queuedAfterSend = Atomic(0)
    let drained = Atomic(false)
}

private let observations = SendObservations()

final class EventFileHandler: EventStreamHandler {
    override func connectionOpened(_ connection: EventConnection) throws {
        guard let file = sharedFile.withLock({ $0 }) else { return }
        connection.write("head\n")
        connection.sendFile(region(of: file))
        connection.write("tail\n")
        observations.queuedAfterSend.store(connection.bufferedOutputCount, ordering: .relaxed)
        observations.notWritableAfterSend.store(!connection.isWritable, ordering: .relaxed)
    }

    override func outputDrained(on connection: EventConnection) throws {
        observations.drained.store(true, ordering: .relaxed)
        connection.close()
    }
}

final class AsyncFileHandler: AsyncStreamRequestHandler {
    override func handle() async throws {
        guard let file = sharedFile.withLock({ $0 }) else { return }
        try await wfile.sendFile(region(of: file), after: Array("head\n".utf8))
        try await wfile.write("tail\n")
        try await wfile.flush()
    }
}

@Suite("Sending files with sendfile(2)", .serialized)
struct FileSendingTests {
    @Test("a blocking handler's writer sends a region larger than the socket buffers to a slow reader")
    func blockingWriterSendsFile() throws {
        let file = try RandomFile(size: 6 << 20)
        sharedFile.withLock { $0 = file }
        defer { sharedFile.withLock { $0 = nil } }
        let server = try TCPServer(.loopback(), handler: BlockingFileHandler.self, mode: ThreadingMode())
        try withServing(server) { server in
            let client = try connectWithSmallBuffer(server.serverAddress)
            defer { client.close() }
            let received = try readSlowly(client)
            #expect(received.count == expected(file).count)
            #expect(received == expected(file))
        }
    }

    @Test("an in-memory writer reads the region into its bytes")
    func inMemoryWriterReadsRegion() throws {
        let file = try RandomFile(size: 100_000)
        let writer = RequestWriter()
        try writer.sendFile(FileRegion(descriptor: file.descriptor, offset: 10, count: 70_000), after: [1, 2])
        #expect(writer.bytes == [1, 2] + Array(file.bytes[10..<70_010]))
        #expect(throws: FileRegionError.fileShrank(missing: 10)) {
            try RequestWriter().sendFile(FileRegion(descriptor: file.descriptor, offset: 90_000, count: 10_010))
        }
    }

    @Test("an event connection sends a region without blocking, counted against the watermark, in order")
    func eventConnectionSendsFile() throws {
        let file = try RandomFile(size: 8 << 20)
        sharedFile.withLock { $0 = file }
        defer { sharedFile.withLock { $0 = nil } }
        let server = try TCPServer(.loopback(), eventHandler: EventFileHandler.self, configuration: .init(loops: 1))
        try withServing(server) { server in
            let client = try connectWithSmallBuffer(server.serverAddress)
            defer { client.close() }
            let received = try readSlowly(client)
            #expect(received.count == expected(file).count)
            #expect(received == expected(file))
        }
        // 8 MiB cannot fit in a loopback socket's buffers: most of it was queued, above the high watermark.
        let notWritable = observations.notWritableAfterSend.load(ordering: .relaxed)
        let queued = observations.queuedAfterSend.load(ordering: .relaxed)
        let drained = observations.drained.load(ordering: .relaxed)
        #expect(notWritable)
        #expect(queued > 1 << 20)
        #expect(drained)
    }

    @Test("an async handler's writer sends a region and waits while the peer is slow")
    func asyncWriterSendsFile() throws {
        let file = try RandomFile(size: 6 << 20)
        sharedFile.withLock { $0 = file }
        defer { sharedFile.withLock { $0 = nil } }
        let server = try TCPServer(.loopback(), asyncHandler: AsyncFileHandler.self, configuration: .init(loops: 1))
        try withServing(server) { server in
            let client = try connectWithSmallBuffer(server.serverAddress)
            defer { client.close() }
            let received = try readSlowly(client)
            #expect(received.count == expected(file).count)
            #expect(received == expected(file))
        }
    }

    @Test("a file that shrinks while queued fails the event connection; the client sees a short body")
    func shrunkFileFailsTheConnection() throws {
        let file = try RandomFile(size: 8 << 20)
        sharedFile.withLock { $0 = file }
        defer { sharedFile.withLock { $0 = nil } }
        let server = try TCPServer(.loopback(), eventHandler: EventFileHandler.self, configuration: .init(loops: 1))
        try withServing(server) { server in
            let client = try connectWithSmallBuffer(server.serverAddress)
            defer { client.close() }
            // Wait until the head arrived (the file is queued by then), then truncate the file.
            let first = try client.socket.receive(maxLength: 5)
            #expect(first == Array("head\n".utf8))
            #expect(truncate(file.path, 1 << 20) == 0)
            // A short body, or a reset (the server closed with bytes unsent): never the whole region.
            let rest = (try? readSlowly(client, pauses: 0)) ?? []
            #expect(rest.count < expected(file).count - 5)
        }
    }
}
