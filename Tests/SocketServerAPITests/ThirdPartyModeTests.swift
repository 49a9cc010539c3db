import Dispatch
import SocketServer
import Synchronization
import Testing

/// A concurrency mode written outside the library, with public API only: requests run on a Dispatch queue,
/// at most `limit` at once; at the limit the server stops accepting until one finishes.
final class DispatchQueueMode: ConcurrencyMode {
    let limit: Int
    private let queue = DispatchQueue(label: "dispatch-mode", attributes: .concurrent)
    private let group = DispatchGroup()
    private let running = Atomic(0)
    private let mostAtOnce = Atomic(0)

    init(limit: Int) { self.limit = limit }

    /// The most requests that ran at the same time.
    var peak: Int { mostAtOnce.load(ordering: .sequentiallyConsistent) }

    var isAcceptingRequests: Bool { running.load(ordering: .sequentiallyConsistent) < limit }

    func processRequest(_ request: Request, clientAddress: SocketAddress, server: BaseServer) throws {
        let now = running.add(1, ordering: .sequentiallyConsistent).newValue
        _ = mostAtOnce.max(now, ordering: .sequentiallyConsistent)
        queue.async(group: group) { [self] in
            do {
                try server.finishRequest(request, clientAddress: clientAddress)
            } catch {
                server.handleError(error, clientAddress: clientAddress)
            }
            server.shutdownRequest(request)
            let remaining = running.subtract(1, ordering: .sequentiallyConsistent).newValue
            if remaining == limit - 1 { server.refreshAccepting() }
        }
    }

    func serverClose(server: BaseServer) {
        group.wait()
    }
}

/// Holds each connection until the client sends a second line, so requests overlap.
final class HoldingEcho: StreamRequestHandler {
    override func handle() throws {
        let first = try rfile.readLine()
        _ = try rfile.readLine()
        try wfile.write(first)
    }
}

@Suite("A concurrency mode written with public API only")
struct ThirdPartyModeTests {
    @Test("requests run on the mode's queue, the limit holds, and serverClose waits for them")
    func dispatchQueueMode() throws {
        let mode = DispatchQueueMode(limit: 2)
        let server = try TCPServer(.loopback(), handler: HoldingEcho.self, mode: mode)
        var clients: [Socket] = []
        try whileServing(server) {
            for index in 0..<4 {
                let client = try Socket(family: .inet, type: .stream)
                client.timeout = .seconds(20)
                try client.connect(to: server.serverAddress)
                try client.sendAll(Array("\(index)\n".utf8))
                clients.append(client)
            }
            var replies: [String] = []
            for client in clients {
                try client.sendAll(Array("go\n".utf8))
                replies.append(String(decoding: try RequestReader(socket: client).readLine(), as: UTF8.self))
                client.close()
            }
            #expect(replies == ["0\n", "1\n", "2\n", "3\n"])
        }
        #expect(mode.peak <= 2, "never more than the limit at once")
        #expect(server.lifecycleState == .closed)
    }
}
