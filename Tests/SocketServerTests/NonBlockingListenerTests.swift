import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// A TCP server whose next `getRequest()` first takes the pending connection itself, as another thread or
/// process sharing the listener would between the readiness and the server's `accept`.
final class ConnectionStealingServer: TCPServer, @unchecked Sendable {
    let stealNext = Atomic(false)
    let stolen = Atomic(0)

    override func getRequest() throws -> (Request, SocketAddress) {
        if stealNext.exchange(false, ordering: .sequentiallyConsistent) {
            let taken = Glibc.accept(fileDescriptor, nil, nil)
            if taken >= 0 {
                _ = Glibc.close(taken)
                stolen.add(1, ordering: .sequentiallyConsistent)
            }
        }
        return try super.getRequest()
    }
}

/// A UDP server whose next `getRequest()` first takes the queued datagram itself: the spurious readiness
/// of a datagram the kernel drops after `poll` said readable.
final class DatagramStealingServer: UDPServer, @unchecked Sendable {
    let stealNext = Atomic(false)
    let stolen = Atomic(0)

    override func getRequest() throws -> (Request, SocketAddress) {
        if stealNext.exchange(false, ordering: .sequentiallyConsistent) {
            var byte: UInt8 = 0
            if recv(fileDescriptor, &byte, 1, Int32(MSG_DONTWAIT)) >= 0 {
                stolen.add(1, ordering: .sequentiallyConsistent)
            }
        }
        return try super.getRequest()
    }
}

/// Writes whether its connection is non-blocking and close-on-exec, as the descriptor says.
final class DescriptorFlagsHandler: StreamRequestHandler {
    override func handle() throws {
        try wfile.write(describeFlags(of: connection.fileDescriptor) + "\n")
    }
}

/// The event-mode counterpart of `DescriptorFlagsHandler`.
final class EventDescriptorFlagsReporter: EventStreamHandler {
    override func connectionOpened(_ connection: EventConnection) throws {
        _ = connection.write(describeFlags(of: connection.core.socket.fileDescriptor) + "\n")
    }
}

/// `"nonblocking"` or `"blocking"`, then `"cloexec"` or `"inheritable"`, from `fcntl`.
func describeFlags(of descriptor: Int32) -> String {
    let status = fcntl(descriptor, F_GETFL)
    let descriptorFlags = fcntl(descriptor, F_GETFD)
    guard status >= 0, descriptorFlags >= 0 else { return "fcntl failed: errno \(errno)" }
    let blocking = status & O_NONBLOCK != 0 ? "nonblocking" : "blocking"
    let inheritance = descriptorFlags & FD_CLOEXEC != 0 ? "cloexec" : "inheritable"
    return "\(blocking) \(inheritance)"
}

/// What a `getRequest()` call run on another thread did.
private func describeGetRequest(_ server: TCPServer) -> String {
    do {
        let (request, _) = try server.getRequest()
        server.shutdownRequest(request)
        return "returned a request"
    } catch let error as SocketError {
        return error.code == EAGAIN ? "EAGAIN" : "\(error)"
    } catch {
        return "\(error)"
    }
}

@Suite("Non-blocking listeners: no spurious readiness blocks the serving loop")
struct NonBlockingListenerTests {
    @Test func acceptAfterTheConnectionWasTakenThrowsEAGAINAtOnce() throws {
        let server = try TCPServer(.loopback(), handler: LineEchoHandler.self)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        defer { client.close() }
        try #require(isReadable(server.socket, within: .seconds(10)))
        let taken = Glibc.accept(server.fileDescriptor, nil, nil)
        try #require(taken >= 0)
        _ = Glibc.close(taken)

        let outcome = SanitizedMutex("did not return")
        var late: TestClient?
        let returned = try returns(within: .seconds(10), unblock: {
            late = try? TestClient(connectingTo: server.serverAddress)
        }) {
            let description = describeGetRequest(server)
            outcome.withLock { $0 = description }
        }
        late?.close()
        #expect(returned, "getRequest blocked on a listener with nothing to accept")
        #expect(outcome.withLock { $0 } == "EAGAIN")
    }

    @Test func datagramReceiveWithNothingQueuedThrowsEAGAINAtOnce() throws {
        let server = try UDPServer(.loopback(), handler: DatagramEchoHandler.self)
        defer { server.serverClose() }
        let sender = try Socket(family: .inet, type: .datagram)
        defer { sender.close() }

        let outcome = SanitizedMutex("did not return")
        let returned = try returns(within: .seconds(10), unblock: {
            try? sender.send(Array("unblock".utf8), to: server.serverAddress)
        }) {
            let description = describeGetRequest(server)
            outcome.withLock { $0 = description }
        }
        #expect(returned, "getRequest blocked on a datagram socket with nothing queued")
        #expect(outcome.withLock { $0 } == "EAGAIN")
    }

    @Test func handleRequestReturnsAfterASpuriousWakeUp() throws {
        let server = try ConnectionStealingServer(.loopback(), handler: LineEchoHandler.self)
        defer { server.serverClose() }
        server.stealNext.store(true, ordering: .sequentiallyConsistent)
        let client = try TestClient(connectingTo: server.serverAddress)
        defer { client.close() }

        let failure = SanitizedMutex<String?>(nil)
        var late: TestClient?
        let returned = try returns(within: .seconds(10), unblock: {
            late = try? TestClient(connectingTo: server.serverAddress)
            late?.close()
        }) {
            do { try server.handleRequest() } catch { failure.withLock { $0 = "\(error)" } }
        }
        #expect(returned, "handleRequest blocked after its connection was taken")
        #expect(server.stolen.load(ordering: .sequentiallyConsistent) == 1)
        #expect(failure.withLock { $0 } == nil)
    }

    @Test func shutdownReturnsAfterASpuriousWakeUpOnAListener() throws {
        let server = try ConnectionStealingServer(.loopback(), handler: LineEchoHandler.self)
        let serving = try ServingThread(server)
        server.stealNext.store(true, ordering: .sequentiallyConsistent)
        let client = try TestClient(connectingTo: server.serverAddress)
        defer { client.close() }
        #expect(eventually { server.stolen.load(ordering: .sequentiallyConsistent) == 1 })

        var late: TestClient?
        let stopped = try returns(within: .seconds(10), unblock: {
            late = try? TestClient(connectingTo: server.serverAddress)
            late?.close()
        }) {
            server.shutdown()
        }
        serving.join()
        server.serverClose()
        #expect(stopped, "shutdown waited for a serving loop blocked in accept")
    }

    @Test func shutdownReturnsAfterASpuriousWakeUpOnADatagramSocket() throws {
        let server = try DatagramStealingServer(.loopback(), handler: DatagramEchoHandler.self)
        let serving = try ServingThread(server)
        let sender = try Socket(family: .inet, type: .datagram)
        defer { sender.close() }
        server.stealNext.store(true, ordering: .sequentiallyConsistent)
        try sender.send(Array("taken".utf8), to: server.serverAddress)
        #expect(eventually { server.stolen.load(ordering: .sequentiallyConsistent) == 1 })

        let stopped = try returns(within: .seconds(10), unblock: {
            try? sender.send(Array("unblock".utf8), to: server.serverAddress)
        }) {
            server.shutdown()
        }
        serving.join()
        server.serverClose()
        #expect(stopped, "shutdown waited for a serving loop blocked in recvfrom")
    }

    @Test func theListenerIsNonBlockingAndTheDatagramSocketBlocking() throws {
        let stream = try TCPServer(.loopback(), handler: LineEchoHandler.self)
        defer { stream.serverClose() }
        let datagram = try UDPServer(.loopback(), handler: DatagramEchoHandler.self)
        defer { datagram.serverClose() }
        #expect(describeFlags(of: stream.fileDescriptor) == "nonblocking cloexec")
        // Blocking on purpose: handlers reply on it from their own threads (see `UDPServer.getRequest`).
        #expect(describeFlags(of: datagram.fileDescriptor) == "blocking cloexec")
    }

    @Test func eventModeConnectionsAreAcceptedNonBlocking() throws {
        let server = try makeEventServer(EventLineEcho.self)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        defer { client.close() }
        try #require(isReadable(server.socket, within: .seconds(10)))
        let (request, _) = try server.getRequest()
        defer { server.shutdownRequest(request) }
        guard case .stream(let connection) = request else {
            Issue.record("not a connection: \(request)")
            return
        }
        #expect(describeFlags(of: connection.fileDescriptor) == "nonblocking cloexec")
        #expect(connection.isNonBlocking)
    }

    @Test func eventModeHandlersSeeNonBlockingCloseOnExecConnections() throws {
        let server = try makeEventServer(EventDescriptorFlagsReporter.self)
        try withServing(server) { server in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            #expect(try client.readLine() == "nonblocking cloexec\n")
        }
    }

    @Test(arguments: ["synchronous", "threading", "pool"])
    func blockingModesHandlersSeeBlockingCloseOnExecConnections(_ modeName: String) throws {
        let mode: any ConcurrencyMode =
            switch modeName {
            case "threading": ThreadingMode()
            case "pool": ThreadPoolMode(workers: 2)
            default: SynchronousMode()
            }
        let server = try TCPServer(.loopback(), handler: DescriptorFlagsHandler.self, mode: mode)
        try withServing(server) { server in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            #expect(try client.readLine() == "blocking cloexec\n")
        }
    }
}
