import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// Answers each request line with a reply too large to leave at once: it writes `bodySize` bytes, pauses
/// reading while they drain, and from `outputDrained` ends the reply with `"end <n>\n"` and resumes reading,
/// the way a file server sends one download at a time on a keep-alive connection.
final class LargeReplyPipelineHandler: EventStreamHandler {
    static let bodySize = 512 * 1024
    private static let body = [UInt8](repeating: UInt8(ascii: "."), count: bodySize)
    /// Replies that were finished from `outputDrained` (the path that must pick up kept input again).
    static let finishedFromDrain = Atomic(0)

    private var replying: Int?
    private var answered = 0

    /// A small kernel send buffer on the server's side, so that a reply cannot all be taken at once however
    /// large the kernel would let the buffer grow: it has to wait for the peer, and ends from `outputDrained`.
    override func connectionOpened(_ connection: EventConnection) throws {
        try connection.core.socket.setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: 32 * 1024)
    }

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while replying == nil, input.readLine() != nil {
            connection.write(Self.body)
            if connection.bufferedOutputCount > 0 {
                replying = answered
                connection.pauseReading()
            } else {
                finishReply(on: connection)
            }
        }
    }

    override func outputDrained(on connection: EventConnection) throws {
        guard replying != nil else { return }
        replying = nil
        finishReply(on: connection)
        Self.finishedFromDrain.add(1, ordering: .relaxed)
        connection.resumeReading()
    }

    private func finishReply(on connection: EventConnection) {
        connection.write("end \(answered)\n")
        answered += 1
    }
}

@Suite("Event mode: pipelined requests with replies above the output watermark")
struct EventModePipeliningTests {
    /// Regression: when a reply finished from `outputDrained` with the output queue emptied, the wake-up that
    /// offers the kept (pipelined) input again was cancelled by removing the write interest in the same
    /// step, so the remaining requests waited until the client sent more.
    @Test func everyPipelinedRequestIsAnsweredWithoutFurtherInput() throws {
        let requests = 10
        let server = try makeEventServer(
            LargeReplyPipelineHandler.self,
            EventMode.Configuration(loops: 1, outputHighWatermark: 64 * 1024, outputLowWatermark: 16 * 1024)
        )
        let drainedBefore = LargeReplyPipelineHandler.finishedFromDrain.load(ordering: .relaxed)
        let replies = try withServing(server) { server throws -> [String] in
            let client = try Socket(family: .inet, type: .stream)
            defer { client.close() }
            // A small receive window keeps the server's replies queued, so they finish from outputDrained.
            try client.setOption(level: SOL_SOCKET, name: SO_RCVBUF, value: 32 * 1024)
            client.timeout = .seconds(15)  // no byte for this long: a request was left unanswered
            try client.connect(to: server.serverAddress)
            // Every request in one send; the write side stays open and nothing more is sent.
            try client.sendAll(Array((0..<requests).map { "request \($0)\n" }.joined().utf8))
            let expected = (0..<requests).reduce(0) { $0 + LargeReplyPipelineHandler.bodySize + "end \($1)\n".utf8.count }
            var received: [UInt8] = []
            received.reserveCapacity(expected)
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while received.count < expected {
                let count = try chunk.withUnsafeMutableBytes { try client.receive(into: $0) }
                if count == 0 { break }
                received.append(contentsOf: chunk[..<count])
            }
            return received.split(separator: UInt8(ascii: "\n")).map {
                String(decoding: $0.drop { $0 == UInt8(ascii: ".") }, as: UTF8.self)
            }
        }
        #expect(replies == (0..<requests).map { "end \($0)" })
        // The test exercised the path it is about: at least one reply had to wait for the peer.
        #expect(LargeReplyPipelineHandler.finishedFromDrain.load(ordering: .relaxed) > drainedBefore)
    }
}
