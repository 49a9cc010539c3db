import Foundation
import Glibc
import Testing

@testable import SocketServer

@Suite("Event mode: many connections, several loops")
struct EventModeLoadTests {
    @Test func thousandConcurrentConnections() throws {
        let connectionCount = 1000
        try #require(raiseDescriptorLimit() > 2 * connectionCount + 100)
        let server = try makeEventServer(EventLineEcho.self, .init(loops: 2))
        try withServing(server) { server throws in
            var clients: [TestClient] = []
            defer { for client in clients { client.close() } }
            for _ in 0..<connectionCount {
                clients.append(try TestClient(connectingTo: server.serverAddress))
            }
            for (index, client) in clients.enumerated() {
                try client.send("client \(index)\n")
            }
            #expect(eventually { eventMode(of: server).connectionCount == connectionCount })
            for (index, client) in clients.enumerated() {
                #expect(try client.readLine() == "client \(index)\n")
            }
            // A second round on the same connections: every one of them is still served.
            for (index, client) in clients.enumerated().reversed() {
                try client.send("again \(index)\n")
                #expect(try client.readLine() == "again \(index)\n")
            }
        }
    }

    @Test func connectionsSpreadOverEveryLoop() throws {
        let loops = 4
        let server = try makeEventServer(EventLoopIndexReporter.self, .init(loops: loops))
        try withServing(server) { server throws in
            var seen = [Int: Int]()
            var clients: [TestClient] = []
            defer { for client in clients { client.close() } }
            for _ in 0..<(loops * 5) {
                let client = try TestClient(connectingTo: server.serverAddress)
                clients.append(client)
                try client.send("which?\n")
                let index = Int(try client.readLine().dropLast()) ?? -1
                seen[index, default: 0] += 1
                // The loop of a connection never changes.
                try client.send("again?\n")
                #expect(Int(try client.readLine().dropLast()) == index)
            }
            #expect(Set(seen.keys) == Set(0..<loops))
            #expect(seen.values.allSatisfy { $0 == 5 })
        }
    }

    @Test func defaultLoopCountFollowsTheCPUs() {
        #expect(EventMode.Configuration().loops == EventLoopGroup.availableProcessorCount)
        #expect(EventMode.Configuration(loops: 0).loops == 1)
    }
}
