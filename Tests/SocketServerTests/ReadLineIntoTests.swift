import CAllocationCounter
import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// A connected TCP pair on loopback (port 0): the client end and the accepted end, each with a 10 s
/// per-call timeout so that a broken reader fails the test instead of hanging it.
private func loopbackPair(_ address: SocketAddress = .loopback()) throws -> (client: Socket, accepted: Socket) {
    let listener = try Socket(family: address.family, type: .stream)
    defer { listener.close() }
    try listener.bind(to: address)
    try listener.listen(backlog: 1)
    let client = try Socket(family: address.family, type: .stream)
    client.timeout = .seconds(10)
    try client.connect(to: try listener.localAddress)
    try client.setOption(level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1)
    let (accepted, _) = try listener.accept()
    accepted.timeout = .seconds(10)
    return (client, accepted)
}

/// Echoes every line it reads into one array, until end of input.
private final class ReadIntoEcho: StreamRequestHandler {
    override func handle() throws {
        var line: [UInt8] = []
        while try rfile.readLine(into: &line) > 0 {
            try wfile.write(line)
        }
    }
}

/// Echoes every line as `readLine()` returns it (a new array each), until end of input.
private final class ReadLineEcho: StreamRequestHandler {
    override func handle() throws {
        while true {
            let line = try rfile.readLine()
            if line.isEmpty { return }
            try wfile.write(line)
        }
    }
}

@Suite("RequestReader.readLine(into:): lines into one reused array")
struct ReadLineIntoTests {
    @Test(arguments: [0, 8192])
    func endOfInputGivesTheRestThenZero(_ bufferSize: Int) throws {
        let (client, accepted) = try loopbackPair()
        defer {
            client.close()
            accepted.close()
        }
        try client.sendAll(Array("one\ntwo".utf8))
        try client.shutdown(.write)
        let reader = RequestReader(socket: accepted, bufferSize: bufferSize)
        var line = Array("left over from before".utf8)
        #expect(try reader.readLine(into: &line) == 4)
        #expect(line == Array("one\n".utf8), "the earlier contents are replaced, not appended to")
        #expect(try reader.readLine(into: &line) == 3)
        #expect(line == Array("two".utf8), "the unterminated rest at end of input")
        #expect(try reader.readLine(into: &line) == 0)
        #expect(line.isEmpty, "empty at end of input, as readLine() returns")
        #expect(try reader.readLine(into: &line) == 0, "and it stays at end of input")
    }

    @Test func aLineExactlyAtTheLimitIsReturned() throws {
        let (client, accepted) = try loopbackPair(.loopbackIPv6())
        defer {
            client.close()
            accepted.close()
        }
        try client.sendAll(Array("1234567\n\n".utf8))
        let reader = RequestReader(socket: accepted, maxLineLength: 8)
        var line: [UInt8] = []
        #expect(try reader.readLine(into: &line) == 8, "8 bytes, the newline included, is within a limit of 8")
        #expect(line == Array("1234567\n".utf8))
        #expect(try reader.readLine(into: &line, maxLength: 1) == 1, "a lone newline is within a limit of 1")
        #expect(line == [0x0A])
    }

    @Test(arguments: [0, 8192])
    func aLineOverTheLimitThrowsAndLosesNothing(_ bufferSize: Int) throws {
        let (client, accepted) = try loopbackPair()
        defer {
            client.close()
            accepted.close()
        }
        try client.sendAll(Array("12345678\nok\n".utf8))
        let reader = RequestReader(socket: accepted, bufferSize: bufferSize, maxLineLength: 8)
        var line = Array("kept".utf8)
        #expect(throws: SocketServerError.lineTooLong(limit: 8)) { try reader.readLine(into: &line) }
        #expect(line == Array("kept".utf8), "a throwing read leaves the array as it was")
        #expect(throws: SocketServerError.lineTooLong(limit: 8)) { try reader.readLine(into: &line, maxLength: .max) }
        #expect(reader.bufferedCount >= 8, "the bytes stay buffered")
        #expect(try reader.read(9) == Array("12345678\n".utf8), "nothing of the long line was consumed")
        #expect(throws: SocketServerError.lineTooLong(limit: 2)) { try reader.readLine(into: &line, maxLength: 2) }
        #expect(try reader.readLine(into: &line) == 3)
        #expect(line == Array("ok\n".utf8))
    }

    /// The client sends a line in pieces, each only once the reader has received everything before it, so
    /// the line really arrives over several receives (one byte per receive with a 0-byte buffer).
    @Test(arguments: [0, 8192])
    func aLineSplitAcrossSeveralSends(_ bufferSize: Int) throws {
        let (client, accepted) = try loopbackPair()
        defer {
            client.close()
            accepted.close()
        }
        let pieces = ["spl", "it ac", "ross sends", "\nnext\n"].map { Array($0.utf8) }
        let aPieceWentEarly = EventFlag()
        let sender = try OSThread {
            var sent = 0
            for piece in pieces {
                if sent > 0 && !eventually({ accepted.readerBytes.load(ordering: .relaxed) >= sent }) {
                    aPieceWentEarly.set()
                }
                _ = try? client.sendAll(piece)
                sent += piece.count
            }
        }
        defer { sender.join() }
        let reader = RequestReader(socket: accepted, bufferSize: bufferSize)
        var line: [UInt8] = []
        #expect(try reader.readLine(into: &line) == 19)
        #expect(line == Array("split across sends\n".utf8), "the pieces joined, in order")
        #expect(try reader.readLine(into: &line) == 5)
        #expect(line == Array("next\n".utf8))
        sender.join()
        #expect(!aPieceWentEarly.isSet, "each piece was sent after the reader had received the one before")
    }

    /// The same input read both ways gives the same lines: empty lines, CR LF, NUL and high bytes, lines
    /// longer than the buffer, and the unterminated tail.
    @Test(arguments: [0, 16, 8192])
    func givesTheBytesReadLineReturns(_ bufferSize: Int) throws {
        var input: [UInt8] = Array("\n\r\nplain\n".utf8) + [0, 0xFF, 0x0A]
        input += [UInt8](repeating: UInt8(ascii: "x"), count: 20_000) + [0x0A]
        for length in [1, 15, 16, 17, 300] {
            input += (0..<length).map { UInt8(truncatingIfNeeded: $0 % 200 + 32) } + [0x0A]
        }
        input += Array("tail without newline".utf8)
        let bytes = input
        func lines(_ read: (RequestReader) throws -> [UInt8]?) throws -> [[UInt8]] {
            let (client, accepted) = try loopbackPair()
            defer {
                client.close()
                accepted.close()
            }
            let sender = try OSThread {
                _ = try? client.sendAll(bytes)
                _ = try? client.shutdown(.write)
            }
            defer { sender.join() }
            let reader = RequestReader(socket: accepted, bufferSize: bufferSize)
            var result: [[UInt8]] = []
            while let line = try read(reader), result.count < 100 { result.append(line) }
            return result
        }
        let returned = try lines { reader in
            let line = try reader.readLine()
            return line.isEmpty ? nil : line
        }
        var reused: [UInt8] = []
        let copied = try lines { reader in try reader.readLine(into: &reused) == 0 ? nil : reused }
        #expect(returned.count == 11)
        #expect(copied == returned)
        #expect(returned.joined().elementsEqual(input))
    }

    /// 10,000 echoes through one connection of a synchronous server whose handler reads into one array:
    /// no heap allocation per line, where `readLine()` makes one per line. Inactive under sanitizers.
    @Test(.enabled(if: allocation_counter_is_active() == 1, "the allocation counter is off under sanitizers"))
    func aHandlerReadingIntoOneArrayAllocatesNothingPerLine() throws {
        let reusing = try TCPServer(.loopback(), handler: ReadIntoEcho.self, mode: SynchronousMode())
        let reusingAllocations = try countEchoAllocations(on: reusing)
        let returning = try TCPServer(.loopback(), handler: ReadLineEcho.self, mode: SynchronousMode())
        let returningAllocations = try countEchoAllocations(on: returning)
        print("sync mode: readLine(into:) \(reusingAllocations), readLine() \(returningAllocations) allocations")
        #expect(returningAllocations >= 10_000, "the counter sees readLine()'s array per line")
        // Zero is the target; a handful allows for an unrelated thread of the test runner waking up.
        #expect(reusingAllocations < 20, "\(reusingAllocations) allocations over 10,000 echoes")
    }
}
