import Foundation
import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// Answers each connection with one line and closes (connect per request).
final class OneLineHandler: StreamRequestHandler {
    override func handle() throws {
        try wfile.write(Array("served\n".utf8))
    }
}

/// Waits (at most 10 s) until `gate` opens, then answers one line.
final class GatedLineHandler: StreamRequestHandler {
    static let gate = Atomic(false)

    override func handle() throws {
        _ = eventually { Self.gate.load(ordering: .sequentiallyConsistent) }
        try wfile.write(Array("served\n".utf8))
    }
}

@Suite("Threading mode: thread reuse")
struct ThreadReuseTests {
    /// The number of threads this process runs now.
    private func processThreadCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? -1
    }

    @Test("500 sequential requests on reused threads: all served, threads bounded, all parked ones joined at close")
    func reuseServesAndBoundsThreads() throws {
        let mode = ThreadingMode(reuseThreads: 4)
        let server = try TCPServer(.loopback(), handler: OneLineHandler.self, mode: mode)
        let before = processThreadCount()
        var peak = 0
        try withServing(server) { server in
            for index in 0..<500 {
                let client = try TestClient(connectingTo: server.serverAddress)
                defer { client.close() }
                #expect(try client.readLine() == "served\n", "request \(index)")
                if index % 50 == 49 { peak = max(peak, processThreadCount()) }
                #expect(mode.parkedThreadCount <= 4)
            }
        }
        // Serving started one thread (the serving one) besides the handler threads.
        #expect(mode.threadsStarted < 100, "\(mode.threadsStarted) threads started for 500 requests")
        #expect(peak - before <= 1 + 4 + 2, "threads grew from \(before) to \(peak)")
        #expect(mode.parkedThreadCount == 0)
        #expect(mode.trackedThreadCount == 0, "serverClose joined every parked thread")
        #expect(eventually { processThreadCount() <= before }, "threads: \(processThreadCount()), before: \(before)")
    }

    @Test("without reuse (the default) every request starts a thread")
    func defaultStartsAThreadPerRequest() throws {
        let mode = ThreadingMode()
        #expect(mode.reuseThreads == 0)
        let server = try TCPServer(.loopback(), handler: OneLineHandler.self, mode: mode)
        try withServing(server) { server in
            for _ in 0..<20 {
                let client = try TestClient(connectingTo: server.serverAddress)
                defer { client.close() }
                #expect(try client.readLine() == "served\n")
            }
        }
        #expect(mode.threadsStarted == 20)
        #expect(mode.parkedThreadCount == 0)
    }

    @Test("reuseThreads is clamped; daemon threads are reused and not joined")
    func clampingAndDaemonThreads() throws {
        #expect(ThreadingMode(reuseThreads: -3).reuseThreads == 0)
        #expect(ThreadingMode(reuseThreads: 1_000_000).reuseThreads == ThreadingMode.maxReusedThreads)
        let mode = ThreadingMode(daemonThreads: true, reuseThreads: 2)
        let server = try TCPServer(.loopback(), handler: OneLineHandler.self, mode: mode)
        try withServing(server) { server in
            for _ in 0..<50 {
                let client = try TestClient(connectingTo: server.serverAddress)
                defer { client.close() }
                #expect(try client.readLine() == "served\n")
            }
        }
        #expect(mode.threadsStarted < 50)
        #expect(mode.parkedThreadCount == 0)
        #expect(mode.trackedThreadCount == 0)
    }

    @Test("a request still running at serverClose() (blockOnClose false) ends its thread instead of parking")
    func threadFinishingAfterCloseDoesNotPark() throws {
        GatedLineHandler.gate.store(false, ordering: .sequentiallyConsistent)
        let mode = ThreadingMode(blockOnClose: false, reuseThreads: 2)
        let server = try TCPServer(.loopback(), handler: GatedLineHandler.self, mode: mode)
        let serving = try ServingThread(server)
        let client = try TestClient(connectingTo: server.serverAddress)
        defer { client.close() }
        #expect(eventually { mode.activeRequests == 1 })
        server.shutdown()
        serving.join()
        server.serverClose()
        GatedLineHandler.gate.store(true, ordering: .sequentiallyConsistent)
        #expect(try client.readLine() == "served\n")
        #expect(eventually { mode.activeRequests == 0 })
        #expect(mode.parkedThreadCount == 0)
    }
}
