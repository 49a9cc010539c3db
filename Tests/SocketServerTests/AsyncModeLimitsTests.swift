import Foundation
import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

/// A per-read `timeout`: the first silent wait is caught and answered, the connection goes on; the next
/// silent wait is not caught, so the connection closes and the timeout is logged.
final class AsyncTimeoutHandler: AsyncStreamRequestHandler {
    override var timeout: Duration? { .milliseconds(200) }

    override func handle() async throws {
        do {
            _ = try await rfile.readLine()
            try await wfile.write("no timeout?\n")
        } catch let error as SocketError where error.isTimeout {
            try await wfile.write("timed out\n")
        }
        try await wfile.write(try await rfile.readLine())
        _ = try await rfile.readLine()
    }
}

/// Writes `total` bytes in 32 KiB chunks to a peer that reads slowly, recording how much output was still
/// queued each time a write that had to wait returned.
final class AsyncWatermarkWriter: DependentAsyncStreamRequestHandler<AsyncWatermarkProbe> {
    static let chunk = [UInt8](repeating: UInt8(ascii: "w"), count: 32 * 1024)

    override func handle() async throws {
        let probe = dependencies
        // A small kernel send buffer, so output queues in the mode instead of the kernel.
        try context.driver.connection?.core.socket.setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: 8 * 1024)
        _ = try await rfile.readLine()
        var written = 0
        while written < probe.total {
            let queuedBefore = context.driver.connection?.bufferedOutputCount ?? 0
            try await wfile.write(Self.chunk)
            written += Self.chunk.count
            // Everything queued behind earlier output: at or above the high watermark the write waited.
            if queuedBefore > 0 && queuedBefore + Self.chunk.count >= probe.high {
                probe.record(queuedAfterWait: context.driver.connection?.bufferedOutputCount ?? -1)
            }
        }
        try await wfile.flush()
    }
}

final class AsyncWatermarkProbe: Sendable {
    let total = 2 * 1024 * 1024
    let high = 128 * 1024
    let low = 32 * 1024
    let queuedAfterWaits = SanitizedMutex<[Int]>([])
    func record(queuedAfterWait: Int) { queuedAfterWaits.withLock { $0.append(queuedAfterWait) } }
}

/// Length-prefixed messages: a 6-digit length, then that many bytes, echoed; reads over 1 KiB are refused.
final class AsyncLengthPrefixedEcho: AsyncStreamRequestHandler {
    override var maxReadLength: Int { 1024 }

    override func handle() async throws {
        while true {
            let header = try await rfile.read(6)
            if header.count < 6 { return }
            let length = Int(String(decoding: header, as: UTF8.self).trimmingCharacters(in: .whitespaces)) ?? -1
            let body = try await rfile.read(length)
            try await wfile.write(body)
        }
    }
}

@Suite("Async handlers: per-read timeout, output watermarks, read lengths", .serialized)
struct AsyncModeLimitsTests {
    @Test("a per-read timeout makes the pending read throw; caught, the connection goes on; uncaught, it closes")
    func perReadTimeout() throws {
        let (logger, store) = RecordingLogHandler.makeLogger()
        let server = try TCPServer(
            .loopback(), asyncHandler: AsyncTimeoutHandler.self, configuration: .init(loops: 1), logger: logger)
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            #expect(try client.readLine() == "timed out\n", "the silent first read timed out")
            try client.send("still here\n")
            #expect(try client.readLine() == "still here\n", "the connection stayed usable")
            #expect(try client.readToEnd() == "", "the uncaught timeout closed the connection")
        }
        #expect(eventually {
            store.all.contains { $0.0 == .info && "\($0.2["socketserver.error"] ?? "")".contains("timed out") }
        }, "logged at info as the client's doing: \(store.messages)")
        #expect(!store.all.contains { $0.0 >= .error }, "\(store.messages)")
    }

    @Test("the per-read timeout leaves the idle timeout in force, and without it nothing times out")
    func timeoutsAreIndependent() throws {
        // No handler timeout: only the idle timeout closes a silent connection.
        let observations = AsyncObservations()
        let server = try TCPServer(
            .loopback(), asyncHandler: WaitingHandler.self, dependencies: observations,
            configuration: .init(loops: 1, idleTimeout: .milliseconds(300)),
            logger: Logger(label: "quiet") { _ in SwiftLogNoOpLogHandler() })
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            #expect(try client.readToEnd() == "")
        }
        #expect(observations.errors.withLock { $0 } == ["\(EventModeError.idleTimeout)"])
    }

    @Test("a write above the high watermark resumes once output fell to the low one, before it drained")
    func writerResumesAtTheLowWatermark() throws {
        let probe = AsyncWatermarkProbe()
        let server = try TCPServer(
            .loopback(), asyncHandler: AsyncWatermarkWriter.self, dependencies: probe,
            configuration: .init(
                loops: 1, outputHighWatermark: probe.high, outputLowWatermark: probe.low,
                maxBufferedOutput: 1024 * 1024))
        try withServing(server) { server throws in
            let client = try Socket(family: .inet, type: .stream)
            defer { client.close() }
            try client.setOption(level: SOL_SOCKET, name: SO_RCVBUF, value: 8 * 1024)
            client.timeout = .seconds(20)
            try client.connect(to: server.serverAddress)
            try client.sendAll(Array("go\n".utf8))
            var received = 0
            var buffer = [UInt8](repeating: 0, count: 4096)
            // The peer reads slowly, 4 KiB at a time, so queued output falls step by step.
            while received < probe.total {
                let count = try buffer.withUnsafeMutableBytes { try client.receive(into: $0) }
                if count == 0 { break }
                received += count
                if received % (64 * 1024) < 4096 { pause(.milliseconds(1)) }
            }
            #expect(received == probe.total)
        }
        let waits = probe.queuedAfterWaits.withLock { $0 }
        #expect(!waits.isEmpty, "some writes had to wait")
        #expect(waits.allSatisfy { $0 >= 0 && $0 <= probe.low }, "a waiting write returns at or below the low watermark: \(waits)")
        #expect(waits.contains { $0 > 0 }, "and before everything was sent (not only on a full drain): \(waits)")
    }

    @Test("read(n) refuses a count above maxReadLength or negative, costing only that connection")
    func readLengthLimit() throws {
        let (logger, store) = RecordingLogHandler.makeLogger()
        let server = try TCPServer(
            .loopback(), asyncHandler: AsyncLengthPrefixedEcho.self, configuration: .init(loops: 1), logger: logger)
        try withServing(server) { server throws in
            let good = try TestClient(connectingTo: server.serverAddress)
            defer { good.close() }
            try good.send("     5hello")
            #expect(try good.socket.receive(maxLength: 5) == Array("hello".utf8))
            for claim in ["  2000", "    -1"] {
                let bad = try TestClient(connectingTo: server.serverAddress)
                defer { bad.close() }
                try bad.send(claim + "xyz")
                #expect(try bad.readToEnd() == "", "a claim of \(claim) closes the connection")
            }
            try good.send("     3abc")
            #expect(try good.socket.receive(maxLength: 3) == Array("abc".utf8), "the other client is still served")
        }
        let errors = store.all.filter { $0.0 == .info }.map { "\($0.2["socketserver.error"] ?? "")" }
        #expect(errors.contains("read of 2000 bytes is not in 0...1024"), "\(errors)")
        #expect(errors.contains("read of -1 bytes is not in 0...1024"), "\(errors)")
    }
}
