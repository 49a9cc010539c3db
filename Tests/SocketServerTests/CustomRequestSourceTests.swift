import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// The reference's "entries from a SQL database" server: requests are records in a queue whose readiness is
/// signalled through a pipe (one byte per record), not connections. Only `fileDescriptor` and `getRequest()`
/// are overridden.
final class QueueServer: BaseServer, @unchecked Sendable {
    private let readEnd: Int32
    private let writeEnd: Int32
    private let queue = SanitizedMutex<[String]>([])
    let results = CallLog()

    init() throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw SocketError(operation: "pipe", code: errno) }
        readEnd = ends[0]
        writeEnd = ends[1]
        _ = fcntl(readEnd, F_SETFL, O_NONBLOCK)
        super.init(serverAddress: .unspecified, handler: RecordHandler.self)
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }

    func submit(_ record: String) {
        queue.withLock { $0.append(record) }
        var signal: UInt8 = 1
        _ = write(writeEnd, &signal, 1)
    }

    override var fileDescriptor: Int32 { readEnd }

    override func getRequest() throws -> (Request, SocketAddress) {
        var signal: UInt8 = 0
        guard read(readEnd, &signal, 1) == 1 else { throw SocketError(operation: "read", code: errno) }
        guard let record = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else {
            throw SocketError(operation: "read", code: EAGAIN)
        }
        return (.custom(record), .unspecified)
    }
}

final class RecordHandler: BaseRequestHandler {
    override func handle() throws {
        guard case .custom(let payload) = request, let record = payload as? String else { return }
        (server as? QueueServer)?.results.record(record.uppercased())
    }
}

@Suite("BaseServer with a request source that is not a socket")
struct CustomRequestSourceTests {
    @Test func requestsComeFromAnEventfdQueue() throws {
        let server = try QueueServer()
        try withServing(server) { server in
            for record in ["alpha", "beta", "gamma"] { server.submit(record) }
            #expect(eventually { server.results.all.count == 3 })
        }
        #expect(server.results.all == ["ALPHA", "BETA", "GAMMA"])
    }

    @Test func handleRequestWorksWithTheCustomSource() throws {
        let server = try QueueServer()
        defer { server.serverClose() }
        server.submit("once")
        try server.handleRequest()
        #expect(server.results.all == ["ONCE"])
        server.timeout = .milliseconds(20)
        try server.handleRequest()  // nothing queued: times out quietly
        #expect(server.results.all == ["ONCE"])
    }
}
