import Dispatch
import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

/// A latch async handlers await without blocking their loop; opened by the test.
final class AsyncLatch: Sendable {
    private struct State {
        var isOpen = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = SanitizedMutex(State())

    func wait() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.isOpen { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.isOpen = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// What the datagram handlers below saw.
final class AsyncDatagramProbe: Sendable {
    let latch = AsyncLatch()
    let inFlight = Atomic(0)
    let mostInFlight = Atomic(0)
    let offLoop = Atomic(0)
    let threads = SanitizedMutex<Set<UInt>>([])
    let cancelled = Atomic(0)

    func entered() {
        let now = inFlight.add(1, ordering: .sequentiallyConsistent).newValue
        var most = mostInFlight.load(ordering: .sequentiallyConsistent)
        while now > most {
            let (exchanged, original) = mostInFlight.compareExchange(
                expected: most, desired: now, ordering: .sequentiallyConsistent)
            if exchanged { break }
            most = original
        }
    }
}

struct AsyncDatagramFailure: Error, CustomStringConvertible {
    var description: String { "the handler refused the datagram" }
}

/// Echoes each datagram; `wait` first awaits the latch (another executor), `sleep` sleeps 60 s
/// (cancellable), `boom` throws. Records whether every step ran on the datagram's loop.
final class AsyncProbeDatagramEcho: DependentAsyncDatagramRequestHandler<AsyncDatagramProbe> {
    override func handle() async throws {
        let probe = dependencies
        probe.entered()
        defer { probe.inFlight.subtract(1, ordering: .sequentiallyConsistent) }
        probe.threads.withLock { _ = $0.insert(pthread_self()) }
        if !context.loop.isCurrentThreadRunningLoop { probe.offLoop.add(1, ordering: .sequentiallyConsistent) }
        let text = String(decoding: packet, as: UTF8.self)
        if text.hasPrefix("boom") { throw AsyncDatagramFailure() }
        if text.hasPrefix("wait") { await probe.latch.wait() }
        if text.hasPrefix("sleep") {
            do {
                try await Task.sleep(for: .seconds(60))
            } catch {
                probe.cancelled.add(1, ordering: .sequentiallyConsistent)
                throw error
            }
        }
        if !context.loop.isCurrentThreadRunningLoop { probe.offLoop.add(1, ordering: .sequentiallyConsistent) }
        try reply(packet)
    }
}

/// Echoes each datagram at once.
final class AsyncDatagramEcho: AsyncDatagramRequestHandler {
    override func handle() async throws { try reply(packet) }
}

/// A UDP server that records its hooks.
final class HookRecordingUDPServer: UDPServer, @unchecked Sendable {
    let calls = CallLog()

    override func handleError(_ error: any Error, clientAddress: SocketAddress) {
        calls.record("handleError \(error)")
        super.handleError(error, clientAddress: clientAddress)
    }

    override func shutdownRequest(_ request: Request) {
        calls.record("shutdownRequest")
        super.shutdownRequest(request)
    }
}

private func datagramSocket(_ family: AddressFamily) throws -> Socket {
    let socket = try Socket(family: family, type: .datagram)
    socket.timeout = .seconds(10)
    return socket
}

private func receiveText(_ socket: Socket) throws -> String {
    String(decoding: try socket.receiveFrom(maxLength: 65536).0, as: UTF8.self)
}

@Suite("Async datagram handlers", .serialized)
struct AsyncDatagramTests {
    @Test("echo over UDP on IPv4 and on a Unix datagram socket; handlers run on a loop thread")
    func echo() throws {
        let before = ResourceSnapshot()
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let probe = AsyncDatagramProbe()
        let servers: [(TCPServer, SocketAddress?)] = [
            (try UDPServer(.loopback(), asyncHandler: AsyncProbeDatagramEcho.self, dependencies: probe,
                           configuration: .init(loops: 2)), nil),
            (try UnixDatagramServer(try directory.socketAddress("server.sock"), asyncHandler: AsyncDatagramEcho.self,
                                    configuration: .init(loops: 1)), try directory.socketAddress("client.sock")),
        ]
        for (server, clientPath) in servers {
            try withServing(server) { server throws in
                let client = try datagramSocket(server.serverAddress.family)
                defer { client.close() }
                if let clientPath { try client.bind(to: clientPath) }
                for round in 0..<20 {
                    try client.send(Array("ping \(round)".utf8), to: server.serverAddress)
                    #expect(try receiveText(client) == "ping \(round)")
                }
            }
        }
        #expect(probe.offLoop.load(ordering: .sequentiallyConsistent) == 0, "every handler ran on its loop")
        #expect(!probe.threads.withLock { $0.contains(pthread_self()) })
        before.expectNothingLeft()
    }

    @Test("echo over UDP on IPv6", .enabled(if: ipv6LoopbackAvailable, "::1 cannot be bound on this machine"))
    func echoIPv6() throws {
        let server = try UDPServer(.loopbackIPv6(), asyncHandler: AsyncDatagramEcho.self, configuration: .init(loops: 1))
        try withServing(server) { server throws in
            #expect(server.serverAddress.family == .inet6)
            #expect(try datagramRoundTrip(to: server.serverAddress, "six") == "six")
        }
    }

    @Test("handlers awaiting another executor run at once, come back to their loop, and all answer")
    func concurrentHandlers() throws {
        let probe = AsyncDatagramProbe()
        defer { probe.latch.open() }
        let server = try UDPServer(
            .loopback(), asyncHandler: AsyncProbeDatagramEcho.self, dependencies: probe, configuration: .init(loops: 1))
        try withServing(server) { server throws in
            let client = try datagramSocket(.inet)
            defer { client.close() }
            for index in 0..<8 { try client.send(Array("wait \(index)".utf8), to: server.serverAddress) }
            #expect(eventually { probe.inFlight.load(ordering: .sequentiallyConsistent) == 8 },
                    "eight handlers wait at once, on one loop")
            probe.latch.open()
            var replies = Set<String>()
            for _ in 0..<8 { replies.insert(try receiveText(client)) }
            #expect(replies == Set((0..<8).map { "wait \($0)" }))
        }
        #expect(probe.offLoop.load(ordering: .sequentiallyConsistent) == 0, "back on the loop after the await")
    }

    @Test("maxConnections bounds the handlers running at once; datagrams beyond it wait in the socket")
    func boundedConcurrency() throws {
        let probe = AsyncDatagramProbe()
        defer { probe.latch.open() }
        let server = try UDPServer(
            .loopback(), asyncHandler: AsyncProbeDatagramEcho.self, dependencies: probe,
            configuration: .init(loops: 2, maxConnections: 2))
        try withServing(server) { server throws in
            let client = try datagramSocket(.inet)
            defer { client.close() }
            for index in 0..<6 { try client.send(Array("wait \(index)".utf8), to: server.serverAddress) }
            #expect(eventually { probe.inFlight.load(ordering: .sequentiallyConsistent) == 2 })
            probe.latch.open()
            var replies = Set<String>()
            for _ in 0..<6 { replies.insert(try receiveText(client)) }
            #expect(replies.count == 6, "every datagram answered once the handlers finished")
        }
        #expect(probe.mostInFlight.load(ordering: .sequentiallyConsistent) == 2, "never more than maxConnections")
    }

    @Test("a handler's error goes to handleError at info or error level; shutdownRequest runs for each datagram")
    func hooks() throws {
        let (logger, store) = RecordingLogHandler.makeLogger()
        let probe = AsyncDatagramProbe()
        let server = try HookRecordingUDPServer(
            .loopback(), asyncHandler: AsyncProbeDatagramEcho.self, dependencies: probe,
            configuration: .init(loops: 1), logger: logger)
        try withServing(server) { server throws in
            let client = try datagramSocket(.inet)
            defer { client.close() }
            try client.send(Array("boom".utf8), to: server.serverAddress)
            #expect(try datagramRoundTrip(to: server.serverAddress, "after") == "after", "the server keeps serving")
            #expect(eventually { server.calls.count("shutdownRequest") == 2 })
        }
        #expect(server.calls.all.contains("handleError the handler refused the datagram"))
        #expect(store.all.contains { $0.0 == .error && $0.1.contains("the handler refused the datagram") },
                "a handler's own error is the server's fault: \(store.messages)")
    }

    @Test("shutdown lets running handlers finish; past shutdownTimeout they are cancelled; nothing is left")
    func shutdown() throws {
        // `Task.sleep` starts Dispatch's timer machinery once per process: before the snapshot.
        let warmed = DispatchSemaphore(value: 0)
        Task {
            try? await Task.sleep(for: .milliseconds(1))
            warmed.signal()
        }
        warmed.wait()
        let before = ResourceSnapshot()
        let probe = AsyncDatagramProbe()
        // Drained: the handlers waiting on the latch finish once it opens, within the deadline.
        let drained = try UDPServer(
            .loopback(), asyncHandler: AsyncProbeDatagramEcho.self, dependencies: probe,
            configuration: .init(loops: 2, shutdownTimeout: .seconds(30)))
        let client = try datagramSocket(.inet)
        let serving = try ServingThread(drained)
        for index in 0..<3 { try client.send(Array("wait \(index)".utf8), to: drained.serverAddress) }
        #expect(eventually { probe.inFlight.load(ordering: .sequentiallyConsistent) == 3 })
        drained.shutdown()
        serving.join()
        let opener = try OSThread {
            _ = eventually { eventMode(of: drained).connectionCount == 3 }
            probe.latch.open()
        }
        drained.serverClose()  // waits for the three handlers
        opener.join()
        #expect(probe.inFlight.load(ordering: .sequentiallyConsistent) == 0)
        for _ in 0..<3 { #expect(try receiveText(client).hasPrefix("wait")) }

        // Past the deadline: sleeping handlers are cancelled and serverClose returns.
        let stuck = try UDPServer(
            .loopback(), asyncHandler: AsyncProbeDatagramEcho.self, dependencies: probe,
            configuration: .init(loops: 2, shutdownTimeout: .milliseconds(100)),
            logger: Logger(label: "quiet") { _ in SwiftLogNoOpLogHandler() })
        let stuckServing = try ServingThread(stuck)
        for index in 0..<4 { try client.send(Array("sleep \(index)".utf8), to: stuck.serverAddress) }
        #expect(eventually { probe.inFlight.load(ordering: .sequentiallyConsistent) == 4 })
        stuck.shutdown()
        stuckServing.join()
        stuck.serverClose()
        #expect(eventually { probe.cancelled.load(ordering: .sequentiallyConsistent) == 4 }, "every sleeper cancelled")
        #expect(eventually { probe.inFlight.load(ordering: .sequentiallyConsistent) == 0 })
        client.close()
        before.expectNothingLeft()
    }

    @Test("a server adopting a bound datagram socket (as from systemd) serves it with an async handler")
    func adopting() throws {
        let listener = try Socket(family: .inet, type: .datagram)
        try listener.bind(to: .loopback())
        let server = try UDPServer(adopting: listener, asyncHandler: AsyncDatagramEcho.self, configuration: .init(loops: 1))
        try withServing(server) { server throws in
            #expect(try datagramRoundTrip(to: server.serverAddress, "adopted") == "adopted")
        }
    }

    @Test("an async datagram handler on a stream server, or a stream one on a datagram server, is refused")
    func mismatch() throws {
        #expect(throws: SocketServerError.self) {
            _ = try TCPServer(.loopback(), asyncHandler: AsyncDatagramEcho.self)
        }
        #expect(throws: SocketServerError.self) {
            _ = try UDPServer(.loopback(), asyncHandler: AsyncLineEcho.self)
        }
    }
}
