import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

/// Records the thread `handleError` ran on and counts `shutdownRequest` calls.
final class PoolErrorServer: TCPServer, @unchecked Sendable {
    let errorThreads = SanitizedMutex<[pthread_t]>([])
    let shutdownRequests = Atomic(0)

    override func handleError(_ error: any Error, clientAddress: SocketAddress) {
        errorThreads.withLock { $0.append(pthread_self()) }
    }

    override func shutdownRequest(_ request: Request) {
        shutdownRequests.add(1, ordering: .sequentiallyConsistent)
        super.shutdownRequest(request)
    }
}

/// A one-worker pool serving on its own thread, and three clients that each sent a line: `r0` is held in its
/// handler by `GatedEchoHandler.gate` (reset here), `r1` and `r2` wait in the queue.
private func poolWithTwoQueuedRequests(
    onClose: ThreadPoolMode.QueuedRequestPolicy
) throws -> (ThreadPoolMode, TCPServer, ServingThread, [TestClient]) {
    GatedEchoHandler.gate.reset()
    let mode = ThreadPoolMode(workers: 1, queueCapacity: 4, onClose: onClose)
    let server = try TCPServer(.loopback(), handler: GatedEchoHandler.self, mode: mode)
    let serving = try ServingThread(server)
    var clients: [TestClient] = []
    do {
        for index in 0..<3 {
            let client = try TestClient(connectingTo: server.serverAddress)
            clients.append(client)
            try client.send("r\(index)\n")
            if index == 0 { #expect(eventually { GatedEchoHandler.gate.waiting == 1 }) }
        }
    } catch {
        for client in clients { client.close() }
        throw error
    }
    #expect(eventually { mode.queuedRequests == 2 })
    return (mode, server, serving, clients)
}

@Suite("Thread pool mode", .serialized)
struct ThreadPoolModeTests {
    @Test func requestsOverlapUpToTheWorkerCount() throws {
        let before = ResourceSnapshot()
        let clients = 8
        let mode = ThreadPoolMode(workers: clients)
        let server = try TCPServer(.loopback(), handler: HoldingHandler.self, mode: mode)
        try withServing(server) { server throws in
            _ = try ModeTest.heldRequestsOverlap(at: server.serverAddress, count: clients)
            #expect(mode.startedWorkers == clients)
        }
        #expect(mode.startedWorkers == 0, "serverClose joins the workers")
        before.expectNothingLeft()
    }

    @Test func workersStartOnDemandAndNeverExceedTheLimit() throws {
        let before = ResourceSnapshot()
        let mode = ThreadPoolMode(workers: 2, queueCapacity: 16)
        #expect(mode.queueCapacity == 16)
        #expect(ThreadPoolMode().workerCount == ThreadPoolMode.defaultWorkerCount)
        #expect(ThreadPoolMode(workers: 3).queueCapacity == 12)
        #expect(ThreadPoolMode(workers: .max).queueCapacity == .max, "four per worker saturates, never traps")
        let server = try TCPServer(.loopback(), handler: SlowEchoHandler.self, mode: mode)
        try withServing(server) { server throws in
            #expect(mode.startedWorkers == 0)
            let elapsed = try ModeTest.timed {
                _ = try ModeTest.concurrentRoundTrips(to: server.serverAddress, count: 4)
            }
            #expect(mode.startedWorkers == 2)
            // Two workers for four 200 ms requests: at least two rounds.
            #expect(elapsed >= .milliseconds(390), "took \(elapsed)")
        }
        before.expectNothingLeft()
    }

    @Test func aFullQueueDisablesTheListener() throws {
        let before = ResourceSnapshot()
        GatedEchoHandler.gate.reset()
        let mode = ThreadPoolMode(workers: 1, queueCapacity: 1)
        let server = try AcceptCountingServer(.loopback(), handler: GatedEchoHandler.self, mode: mode)
        try withServing(server) { server throws in
            var clients: [TestClient] = []
            defer { for client in clients { client.close() } }
            let first = try TestClient(connectingTo: server.serverAddress)
            clients.append(first)
            try first.send("first\n")
            #expect(eventually { GatedEchoHandler.gate.waiting == 1 })
            for name in ["second", "third", "fourth"] {
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("\(name)\n")
                clients.append(client)
            }
            // One request runs, one waits in the queue; the rest wait in the kernel's backlog, unaccepted,
            // while the loop keeps running.
            #expect(eventually { server.accepted == 2 })
            #expect(server.waitForLoopToPassTheBacklog(), "the serving loop stopped")
            #expect(server.accepted == 2)
            #expect(mode.queuedRequests == 1)
            #expect(mode.activeRequests == 1)
            #expect(!mode.isAcceptingRequests)
            GatedEchoHandler.gate.open()
            for (client, name) in zip(clients, ["first", "second", "third", "fourth"]) {
                #expect(try client.readLine() == "\(name)\n")
            }
            #expect(server.accepted == 4)
            #expect(mode.isAcceptingRequests)
        }
        before.expectNothingLeft()
    }

    @Test(arguments: [ThreadPoolMode.QueuedRequestPolicy.drain, .cancel])
    func serverCloseDrainsOrCancelsTheQueue(policy: ThreadPoolMode.QueuedRequestPolicy) throws {
        let before = ResourceSnapshot()
        let (mode, server, serving, clients) = try poolWithTwoQueuedRequests(onClose: policy)
        defer { for client in clients { client.close() } }
        server.shutdown()
        serving.join()
        let returnedEarly = try ModeTest.returnedBeforeGateOpened(GatedEchoHandler.gate) {
            server.serverClose()
        }
        #expect(!returnedEarly, "serverClose must wait for the running request")
        #expect(try clients[0].readLine() == "r0\n")
        switch policy {
        case .drain:
            #expect(try clients[1].readLine() == "r1\n")
            #expect(try clients[2].readLine() == "r2\n")
        case .cancel:
            #expect(try clients[1].readToEnd() == "", "a cancelled request is closed unhandled")
            #expect(try clients[2].readToEnd() == "")
        }
        #expect(mode.startedWorkers == 0)
        #expect(mode.queuedRequests == 0)
        for client in clients { client.close() }
        before.expectNothingLeft()
    }

    /// A cancelled `SocketServerService` during a graceful drain: the requests still queued are closed
    /// unhandled, the running one finishes.
    @Test func closeWithoutDrainDuringTheDrainDropsTheRestOfTheQueue() throws {
        let before = ResourceSnapshot()
        let (mode, server, serving, clients) = try poolWithTwoQueuedRequests(onClose: .drain)
        defer { for client in clients { client.close() } }
        server.shutdown()
        serving.join()
        let closing = try OSThread { server.serverClose() }
        // serverClose() has taken the workers (it drains: the queue stays) and waits for them.
        #expect(eventually { mode.startedWorkers == 0 })
        #expect(mode.queuedRequests == 2)
        server.closeWithoutDrain()
        GatedEchoHandler.gate.open()
        closing.join()
        #expect(try clients[0].readLine() == "r0\n")
        #expect(try clients[1].readToEnd() == "", "a request dropped by closeWithoutDrain is closed unhandled")
        #expect(try clients[2].readToEnd() == "")
        #expect(mode.queuedRequests == 0)
        for client in clients { client.close() }
        before.expectNothingLeft()
    }

    @Test func handlerErrorsGoToHandleErrorOnAWorker() throws {
        let before = ResourceSnapshot()
        let server = try PoolErrorServer(
            .loopback(), handler: ThreadRecordingFailingHandler.self, mode: ThreadPoolMode(workers: 1))
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("boom\n")
            #expect(try client.readToEnd() == "")
            client.close()
            #expect(eventually { server.errorThreads.withLock { $0.count == 1 } })
        }
        let handlerThread = ThreadRecordingFailingHandler.thread.withLock { $0 }
        let errorThread = server.errorThreads.withLock { $0.first }
        if let handlerThread, let errorThread {
            #expect(pthread_equal(handlerThread, errorThread) != 0)
        } else {
            Issue.record("handler or handleError did not run")
        }
        #expect(server.shutdownRequests.load(ordering: .sequentiallyConsistent) == 1)
        before.expectNothingLeft()
    }

    @Test func datagramRequestsRunOnWorkers() throws {
        let before = ResourceSnapshot()
        let mode = ThreadPoolMode(workers: 2)
        let server = try UDPServer(.loopback(), handler: DatagramEchoHandler.self, mode: mode)
        try withServing(server) { server throws in
            for index in 0..<20 {
                #expect(try datagramRoundTrip(to: server.serverAddress, "b\(index)") == "b\(index)")
            }
            #expect(mode.startedWorkers >= 1 && mode.startedWorkers <= 2)
        }
        #expect(mode.startedWorkers == 0)
        before.expectNothingLeft()
    }
}
