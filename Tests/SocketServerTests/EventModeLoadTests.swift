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

    /// Checked against what the kernel reports in /proc (parsed here, independently of the library's
    /// `sched_getaffinity` call), and on threads pinned to one and two CPUs, where the default must follow
    /// the smaller mask.
    @Test func defaultLoopCountFollowsTheCPUs() throws {
        let allowed = try allowedCPUs()
        #expect(EventMode.Configuration().loops == allowed.count)
        for subset in [Array(allowed.prefix(1)), Array(allowed.prefix(2))] {
            let loops = SanitizedMutex(0)
            let thread = try OSThread {
                // A 1,024-CPU mask, glibc's cpu_set_t.
                var mask = [UInt64](repeating: 0, count: 16)
                for cpu in subset { mask[cpu / 64] |= 1 << UInt64(cpu % 64) }
                guard let setAffinity = sched_setaffinity,
                    mask.withUnsafeBytes({ setAffinity(0, $0.count, $0.baseAddress) }) == 0
                else { return }
                let count = EventMode.Configuration().loops
                loops.withLock { $0 = count }
            }
            thread.join()
            #expect(loops.withLock { $0 } == subset.count, "pinned to CPUs \(subset)")
        }
        #expect(EventMode.Configuration(loops: 0).loops == 1)
    }
}

/// The CPUs the calling thread may run on, from `Cpus_allowed_list` in /proc/thread-self/status ("0-3,6").
private func allowedCPUs() throws -> [Int] {
    let status = try String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else {
        throw SocketError(operation: "Cpus_allowed_list", code: ENOENT)
    }
    var cpus: [Int] = []
    for range in line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces).split(separator: ",") {
        let bounds = range.split(separator: "-").compactMap { Int($0) }
        guard let first = bounds.first, let last = bounds.last else { continue }
        cpus += Array(first...last)
    }
    return cpus
}

/// glibc's `sched_setaffinity`, which Swift's Glibc module hides behind `_GNU_SOURCE`.
private let sched_setaffinity: (@convention(c) (pid_t, Int, UnsafeRawPointer?) -> Int32)? = {
    guard let symbol = dlsym(nil, "sched_setaffinity") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (pid_t, Int, UnsafeRawPointer?) -> Int32).self)
}()
