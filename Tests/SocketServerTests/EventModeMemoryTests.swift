import CAllocationCounter
import Glibc
import Testing

@testable import SocketServer

@Suite("Event mode: memory per idle connection")
struct EventModeMemoryTests {
    /// Server memory (resident set growth) per idle connection, with the clients as bare descriptors in this
    /// same process (they cost no user memory). 10,000 connections when the descriptor limit can be raised
    /// that far, else as many as it allows.
    @Test(
        .enabled(
            if: allocation_counter_is_active() == 1,
            "a sanitizer's shadow memory would be counted too (the allocation counter is off exactly then)"))
    func idleConnectionsStaySmall() throws {
        let available = raiseDescriptorLimit(atLeast: 20_200 + openDescriptorCount())
        let connectionCount = min(10_000, (available - openDescriptorCount() - 200) / 2)
        try #require(connectionCount >= 1_000)
        let server = try makeEventServer(EventLineEcho.self, .init(loops: 2))
        let mode = eventMode(of: server)
        try withServing(server) { server throws in
            var clients: [Int32] = []
            clients.reserveCapacity(connectionCount)
            defer { for client in clients { close(client) } }
            // Warm up: loops started, the first connection's one-time costs paid.
            let warm = try TestClient(connectingTo: server.serverAddress)
            try warm.send("warm\n")
            _ = try warm.readLine()
            warm.close()
            #expect(eventually { mode.connectionCount == 0 })
            let before = residentBytes()
            for _ in 0..<connectionCount {
                let client = try Socket(family: .inet, type: .stream)
                try client.connect(to: server.serverAddress)
                clients.append(client.detach())
            }
            #expect(eventually(within: .seconds(60)) { mode.connectionCount == connectionCount })
            let perConnection = (residentBytes() - before) / connectionCount
            print("event mode: \(perConnection) bytes of server memory per idle connection at \(connectionCount)")
            #expect(perConnection <= 1_500)
        }
    }
}

/// The resident set size of this process, in bytes.
private func residentBytes() -> Int {
    guard let file = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(file) }
    var size = 0
    var resident = 0
    guard
        withUnsafeMutablePointer(
            to: &size,
            { sizePointer in
                withUnsafeMutablePointer(to: &resident) { residentPointer in
                    withVaList([sizePointer, residentPointer]) { vfscanf(file, "%ld %ld", $0) }
                }
            }
        ) == 2
    else { return 0 }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
}
