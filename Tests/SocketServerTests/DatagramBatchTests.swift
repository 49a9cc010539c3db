import CAllocationCounter
import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// Replies to each datagram with `size` bytes: the datagram's payload, then filler.
final class EventPaddedDatagramEcho: EventDatagramHandler {
    nonisolated(unsafe) static var size = 2_000

    override func datagramReceived(_ datagram: EventDatagram) throws {
        var reply = datagram.packet
        if reply.count < Self.size { reply.append(contentsOf: repeatElement(UInt8(ascii: "."), count: Self.size - reply.count)) }
        try datagram.reply(reply)
    }
}

@Suite("Datagram batches: recvmmsg in, sendmmsg out")
struct DatagramBatchTests {
    /// Clients each send `perClient` datagrams before the server serves, so its first readiness finds them
    /// all queued; then every client must get exactly its own datagrams back.
    private func burst(
        server: UDPServer,
        clientAddresses: [SocketAddress?],
        perClient: Int
    ) throws -> (replies: [[String]], largestBatch: Int) {
        let clients = try clientAddresses.map { address -> Socket in
            let socket = try Socket(family: server.serverAddress.family, type: .datagram)
            socket.timeout = .seconds(10)
            if let address { try socket.bind(to: address) }
            return socket
        }
        defer { for client in clients { client.close() } }
        for index in 0..<perClient {
            for (number, client) in clients.enumerated() {
                try client.send(Array("client \(number) datagram \(index)".utf8), to: server.serverAddress)
            }
        }
        let replies = try withServing(server) { _ in
            try clients.map { client in
                try (0..<perClient).map { _ in
                    let (reply, _) = try client.receiveFrom(maxLength: 65_536)
                    return String(decoding: reply.prefix(while: { $0 != UInt8(ascii: ".") }), as: UTF8.self)
                }
            }
        }
        return (replies, server.receiveBatch?.largestReceived ?? 0)
    }

    private func expectEveryReply(_ replies: [[String]], perClient: Int) {
        for (number, received) in replies.enumerated() {
            #expect(received == (0..<perClient).map { "client \(number) datagram \($0)" }, "client \(number)")
        }
    }

    @Test("a burst over IPv4 and IPv6 is received in batches and every datagram answered to its sender", arguments: [false, true])
    func burstOverIP(ipv6: Bool) throws {
        let server = try UDPServer(ipv6 ? .loopbackIPv6() : .loopback(), eventHandler: EventDatagramEcho.self)
        let (replies, largest) = try burst(server: server, clientAddresses: [nil, nil, nil, nil], perClient: 20)
        expectEveryReply(replies, perClient: 20)
        #expect(largest > 1, "80 queued datagrams should arrive more than one per recvmmsg")
        #expect(largest <= DatagramReceiveBatch.defaultCapacity)
    }

    @Test("a burst over Unix datagram sockets is answered to each bound client")
    func burstOverUnix() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let server = try UnixDatagramServer(try directory.socketAddress("server"), eventHandler: EventDatagramEcho.self)
        let clients = try (0..<3).map { try directory.socketAddress("client\($0)") }
        // Unix datagram queues hold about 10 datagrams per peer by default (net.unix.max_dgram_qlen).
        let (replies, largest) = try burst(server: server, clientAddresses: clients, perClient: 3)
        expectEveryReply(replies, perClient: 3)
        #expect(largest > 1)
    }

    @Test("synchronous mode receives a burst in batches too")
    func burstInSynchronousMode() throws {
        let server = try UDPServer(.loopback(), handler: DatagramEchoForBatches.self)
        let (replies, largest) = try burst(server: server, clientAddresses: [nil, nil], perClient: 20)
        expectEveryReply(replies, perClient: 20)
        #expect(largest > 1)
    }

    /// The server's send buffer holds only a few 2,000-byte replies to a Unix client that has not read yet:
    /// the rest wait in the reply queue and go out as the client reads, none lost, in order.
    @Test("replies the socket cannot take yet (EAGAIN) are queued, not lost")
    func repliesWaitForRoom() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let server = try UnixDatagramServer(try directory.socketAddress("server"), eventHandler: EventPaddedDatagramEcho.self)
        try server.socket.setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: 4_096)
        let client = try Socket(family: .unix, type: .datagram)
        defer { client.close() }
        client.timeout = .seconds(10)
        try client.bind(to: try directory.socketAddress("client"))
        let count = 8
        for index in 0..<count { try client.send(Array("datagram \(index)".utf8), to: server.serverAddress) }
        let received = try withServing(server) { server -> [String] in
            // Let the whole batch be handled (and the send buffer fill) before reading anything.
            let replies = eventMode(of: server).datagramReplies
            #expect(eventually { (replies?.timesBlocked.load(ordering: .relaxed) ?? 0) > 0 })
            return try (0..<count).map { _ in
                let (reply, _) = try client.receiveFrom(maxLength: 65_536)
                #expect(reply.count == EventPaddedDatagramEcho.size)
                return String(decoding: reply.prefix(while: { $0 != UInt8(ascii: ".") }), as: UTF8.self)
            }
        }
        #expect(received == (0..<count).map { "datagram \($0)" })
    }

    /// 10,000 datagram echoes from one client after a warm-up: the packet array and the reply queue are
    /// reused, so the server allocates (almost) nothing per datagram.
    @Test(.enabled(if: allocation_counter_is_active() == 1, "the allocation counter is off under sanitizers"))
    func echoAllocatesNothingPerDatagram() throws {
        let server = try UDPServer(.loopback(), eventHandler: EventDatagramEcho.self)
        let allocations = try withServing(server, pollInterval: .seconds(10)) { server -> Int64 in
            let client = try Socket(family: .inet, type: .datagram)
            defer { client.close() }
            client.timeout = .seconds(10)
            try client.connect(to: server.serverAddress)
            let message = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
            let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
            defer {
                message.deallocate()
                reply.deallocate()
            }
            message.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "u"))
            func echo(_ count: Int) throws {
                for _ in 0..<count {
                    try client.sendAll(UnsafeRawBufferPointer(message))
                    _ = try client.receive(into: reply)
                }
            }
            try echo(1_000)
            let before = allocation_counter_allocations()
            try echo(10_000)
            let after = allocation_counter_allocations()
            #expect(reply.elementsEqual(message))
            return after - before
        }
        print("event mode UDP: \(allocations) heap allocations over 10,000 datagrams")
        #expect(allocations < 20, "\(allocations) allocations over 10,000 datagrams")
    }
}

/// A synchronous datagram echo (the reply is what `wfile` holds when the handler finishes).
final class DatagramEchoForBatches: DatagramRequestHandler {
    override func handle() throws {
        try wfile.write(packet)
    }
}
