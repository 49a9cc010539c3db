import Glibc
import Testing

@testable import SocketServer

/// Sends `bytes` on `socket` from another thread (so that a large amount does not deadlock against a
/// reader that has not started), then half-closes it. Join the returned thread.
private func sendInBackground(_ bytes: [UInt8], on socket: Socket) throws -> OSThread {
    try OSThread {
        _ = try? socket.sendAll(bytes)
        _ = try? socket.shutdown(.write)
    }
}

@Suite("RequestReader and RequestWriter: hostile sizes")
struct RequestReaderTests {
    @Test(arguments: [0, 1, 8192, Int.max, -5])
    func readOfIntMaxReturnsWhatArrivedWithoutAllocatingForTheClaim(_ bufferSize: Int) throws {
        let (writer, reading) = try socketPair()
        defer {
            writer.close()
            reading.close()
        }
        let reader = RequestReader(socket: reading, bufferSize: bufferSize, maxReadLength: .max)
        #expect(reader.maxReadLength == .max)
        try writer.sendAll(Array("0123456789".utf8))
        try writer.shutdown(.write)
        let (bytes, grew) = try MemoryProbe.growth { try reader.read(.max) }
        #expect(bytes == Array("0123456789".utf8))
        #expect(grew <= hostileGrowthLimit, "grew by \(grew) bytes")
        #expect(try reader.read(.max) == [], "end of file")
    }

    @Test func aLargeReadReceivesEverythingAsItArrives() throws {
        let (writer, reading) = try socketPair()
        defer {
            writer.close()
            reading.close()
        }
        let payload = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let sender = try sendInBackground(payload, on: writer)
        defer { sender.join() }
        let reader = RequestReader(socket: reading, maxReadLength: .max)
        #expect(try reader.read(Int(UInt32.max)) == payload, "everything up to end of file, in order")
    }

    @Test(arguments: [0, 8192])
    func readWithinTheLimitIsExactAndKeepsTheRest(_ bufferSize: Int) throws {
        let (writer, reading) = try socketPair()
        defer {
            writer.close()
            reading.close()
        }
        let payload = (0..<200_000).map { UInt8(truncatingIfNeeded: $0) }
        let sender = try sendInBackground(payload, on: writer)
        defer { sender.join() }
        let reader = RequestReader(socket: reading, bufferSize: bufferSize)
        #expect(try reader.read(70_000) == Array(payload[..<70_000]))
        #expect(try reader.read(1) == [payload[70_000]])
        #expect(try reader.read(200_000) == Array(payload[70_001...]), "fewer only at end of file")
    }

    @Test(arguments: [-1, Int.min, RequestReader.defaultMaxReadLength + 1, Int(UInt32.max), Int.max])
    func aCountOutsideTheLimitThrowsBeforeReceiving(_ count: Int) throws {
        let (writer, reading) = try socketPair()
        defer {
            writer.close()
            reading.close()
        }
        try writer.sendAll(Array("abc".utf8))
        let reader = RequestReader(socket: reading)
        #expect(reader.maxReadLength == RequestReader.defaultMaxReadLength)
        #expect(throws: SocketServerError.readLengthOutOfRange(count: count, limit: RequestReader.defaultMaxReadLength)) {
            _ = try reader.read(count)
        }
        #expect(reader.bufferedCount == 0, "nothing was received")
        #expect(try reader.read(3) == Array("abc".utf8), "nothing was consumed")
    }

    @Test func aNegativeMaxReadLengthAllowsOnlyEmptyReads() throws {
        let (writer, reading) = try socketPair()
        defer {
            writer.close()
            reading.close()
        }
        let reader = RequestReader(socket: reading, maxReadLength: -10)
        #expect(reader.maxReadLength == 0)
        #expect(try reader.read(0) == [])
        #expect(throws: SocketServerError.readLengthOutOfRange(count: 1, limit: 0)) { _ = try reader.read(1) }
    }

    @Test func readToEndStopsAtItsLimit() throws {
        let (writer, reading) = try socketPair()
        defer {
            writer.close()
            reading.close()
        }
        let sender = try sendInBackground([UInt8](repeating: 7, count: 1_000_000), on: writer)
        defer { sender.join() }
        let reader = RequestReader(socket: reading)
        #expect(throws: SocketServerError.inputTooLong(limit: 1000)) { _ = try reader.readToEnd(maxLength: 1000) }
        #expect(reader.bufferedCount <= 1000 + RequestReader.receiveStep, "one receive past the limit at most")
        reader.close()
        reading.close()
    }

    @Test func readToEndLimitIsExact() throws {
        for (limit, size, fits) in [(100, 100, true), (99, 100, false), (0, 0, true), (-5, 0, true), (-5, 1, false)] {
            let (writer, reading) = try socketPair()
            defer {
                writer.close()
                reading.close()
            }
            try writer.sendAll([UInt8](repeating: 1, count: size))
            try writer.shutdown(.write)
            let reader = RequestReader(socket: reading, bufferSize: 16)
            if fits {
                #expect(try reader.readToEnd(maxLength: limit).count == size)
            } else {
                #expect(throws: SocketServerError.inputTooLong(limit: max(limit, 0))) {
                    _ = try reader.readToEnd(maxLength: limit)
                }
            }
        }
    }

    @Test func readLineLimitsAreClampedAndBoundTheBuffer() throws {
        let (writer, reading) = try socketPair()
        defer {
            writer.close()
            reading.close()
        }
        try writer.sendAll(Array("\nab\n".utf8))
        let reader = RequestReader(socket: reading, maxLineLength: 4)
        #expect(try reader.readLine(maxLength: 0) == Array("\n".utf8), "a limit below 1 is 1")
        #expect(throws: SocketServerError.lineTooLong(limit: 1)) { _ = try reader.readLine(maxLength: -3) }
        #expect(try reader.readLine(maxLength: .max) == Array("ab\n".utf8), "never above maxLineLength")
        #expect(RequestReader(socket: reading, maxLineLength: -1).maxLineLength == 1)

        // A line without end: the reader stops at the limit plus one receive.
        let sender = try sendInBackground([UInt8](repeating: UInt8(ascii: "a"), count: 500_000), on: writer)
        defer { sender.join() }
        let endless = RequestReader(socket: reading)
        #expect(throws: SocketServerError.lineTooLong(limit: 65536)) { _ = try endless.readLine() }
        #expect(endless.bufferedCount < 65536 + 8192 + 1)
        endless.close()
        reading.close()
    }

    @Test func readAvailableWithAHugeBufferSize() throws {
        let (writer, reading) = try socketPair()
        defer {
            writer.close()
            reading.close()
        }
        try writer.sendAll(Array("hello".utf8))
        let (bytes, grew) = try MemoryProbe.growth {
            try RequestReader(socket: reading, bufferSize: .max).readAvailable()
        }
        #expect(bytes == Array("hello".utf8))
        #expect(grew <= 2 * RequestReader.maxBufferSize + hostileGrowthLimit, "clamped to maxBufferSize")
    }

    @Test func aDatagramReaderReadsItsBytesWhateverTheCount() throws {
        let reader = RequestReader(bytes: Array("one\ntwo".utf8))
        #expect(reader.maxReadLength == .max)
        #expect(reader.fileDescriptor == -1)
        #expect(try reader.read(.max) == Array("one\ntwo".utf8))
        #expect(throws: SocketServerError.readLengthOutOfRange(count: -1, limit: .max)) { _ = try reader.read(-1) }
        #expect(throws: SocketServerError.inputTooLong(limit: 0)) {
            _ = try RequestReader(bytes: Array("abc".utf8)).readToEnd(maxLength: -1)
        }
    }

    @Test func writerBufferSizesOfAnyValue() throws {
        let (writing, peer) = try socketPair()
        defer {
            writing.close()
            peer.close()
        }
        peer.timeout = .seconds(10)
        // Int.max: reserves a bounded amount, sends only on flush.
        let (writer, grew) = MemoryProbe.growth { RequestWriter(socket: writing, bufferSize: .max) }
        #expect(grew <= hostileGrowthLimit)
        try writer.write("buffered")
        #expect(writer.bytes == Array("buffered".utf8))
        try writer.flush()
        #expect(try peer.receive(maxLength: 100) == Array("buffered".utf8))
        // Negative: unbuffered, as 0.
        let unbuffered = RequestWriter(socket: writing, bufferSize: -42)
        try unbuffered.write("now")
        #expect(unbuffered.bytes == [])
        #expect(try peer.receive(maxLength: 100) == Array("now".utf8))
        // A small buffer: a write that does not fit flushes first, one as large goes straight out.
        let small = RequestWriter(socket: writing, bufferSize: 4)
        try small.write("ab")
        try small.write("cde")
        #expect(small.bytes == Array("cde".utf8))
        try small.write("fghij")
        #expect(small.bytes == [])
        #expect(try RequestReader(socket: peer).read(10) == Array("abcdefghij".utf8))
        #expect(RequestWriter().fileDescriptor == -1)
        #expect(writer.fileDescriptor == writing.fileDescriptor)
    }
}

/// Replies with the descriptors of `rfile`, `wfile` and the connection.
final class DescriptorReportingHandler: StreamRequestHandler {
    override func handle() throws {
        try wfile.write("\(rfile.fileDescriptor) \(wfile.fileDescriptor) \(connection.fileDescriptor)\n")
    }
}

/// Replies with the descriptors of a datagram handler's `rfile` and `wfile`.
final class DatagramDescriptorReportingHandler: DatagramRequestHandler {
    override func handle() throws {
        try wfile.write("\(rfile.fileDescriptor) \(wfile.fileDescriptor)")
    }
}

@Suite("rfile and wfile descriptors")
struct HandlerFileDescriptorTests {
    @Test func streamHandlerFilesShareTheConnectionDescriptor() throws {
        let server = try TCPServer(.loopback(), handler: DescriptorReportingHandler.self)
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            let fields = try client.readLine().dropLast().split(separator: " ").compactMap { Int32($0) }
            #expect(fields.count == 3)
            #expect(Set(fields).count == 1, "rfile, wfile and the connection: one descriptor, \(fields)")
            #expect((fields.first ?? -1) >= 0)
        }
    }

    @Test func datagramHandlerFilesHaveNoDescriptor() throws {
        let server = try UDPServer(.loopback(), handler: DatagramDescriptorReportingHandler.self)
        try withServing(server) { server throws in
            #expect(try datagramRoundTrip(to: server.serverAddress, "x") == "-1 -1")
        }
    }
}
