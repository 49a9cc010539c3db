import Glibc
import Logging
import Testing

@testable import SocketServer

final class AlwaysFailingHandler: StreamRequestHandler {
    struct Failure: Error, CustomStringConvertible {
        var description: String { "the handler failed on purpose" }
    }
    override func handle() throws { throw Failure() }
}

final class ThrowingVerifyServer: TCPServer, @unchecked Sendable {
    struct Refused: Error {}
    override func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool {
        throw Refused()
    }
}

@Suite("Errors: handleError, logging, failed construction")
struct ErrorHandlingTests {
    @Test func defaultHandleErrorLogsTheClientAndTheErrorThroughTheInjectedLogger() throws {
        let (logger, store) = RecordingLogHandler.makeLogger()
        let server = try TCPServer(.loopback(), handler: AlwaysFailingHandler.self)
        server.logger = logger
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        let clientAddress = try client.socket.localAddress
        try server.handleRequest()
        let entries = store.all
        #expect(entries.count == 1)
        #expect(entries.first?.0 == .error)
        #expect(entries.first?.2["socketserver.client.address"]?.description == clientAddress.description)
        #expect(entries.first?.2["socketserver.error"]?.description == "the handler failed on purpose")
        #expect(try client.readToEnd() == "", "the failed request was shut down")
    }

    @Test func anErrorFromVerifyRequestStopsServeForeverAndPropagates() throws {
        let server = try ThrowingVerifyServer(.loopback(), handler: LineEchoHandler.self)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        #expect(throws: ThrowingVerifyServer.Refused.self) { try server.serveForever() }
        #expect(!server.isServing)
        client.close()
    }

    @Test func aThousandFailedConstructionsLeakNoDescriptor() throws {
        let occupied = try TCPServer(.loopback(), handler: BaseRequestHandler.self)
        defer { occupied.serverClose() }
        let before = openDescriptorCount()
        for _ in 0..<1000 {
            #expect(throws: SocketError.self) {
                _ = try TCPServer(occupied.serverAddress, handler: BaseRequestHandler.self)
            }
        }
        #expect(openDescriptorCount() == before)
    }

    @Test func aFailedBindReportsTheSystemError() throws {
        let occupied = try TCPServer(.loopback(), handler: BaseRequestHandler.self)
        defer { occupied.serverClose() }
        do {
            _ = try TCPServer(occupied.serverAddress, handler: BaseRequestHandler.self)
            Issue.record("binding a used port succeeded")
        } catch let error as SocketError {
            #expect(error.operation == "bind")
            #expect(error.code == EADDRINUSE)
        }
    }

    @Test func invalidAddressesAreClearErrors() throws {
        #expect(throws: SocketServerError.invalidAddress("127.0.0.1:70000")) {
            _ = try SocketAddress(host: "127.0.0.1", port: 70000)
        }
        #expect(throws: SocketServerError.self) { _ = try SocketAddress(host: "no such host.invalid", port: 1) }
        #expect(throws: SocketServerError.self) {
            _ = try SocketAddress(unixPath: String(repeating: "p", count: 200))
        }
    }
}
