import CAllocationCounter
import Glibc
import Testing

@testable import SocketServer

@Suite("Event mode: no heap allocation per message")
struct EventModeAllocationTests {
    /// 10,000 line echoes through one connection, after a warm-up: the process (server loops and this
    /// allocation-free client) allocates nothing per message. Inactive under sanitizers, which replace the
    /// allocator themselves.
    @Test(.enabled(if: allocation_counter_is_active() == 1, "the allocation counter is off under sanitizers"))
    func echoAllocatesNothingPerMessage() throws {
        // The counter must see an ordinary allocation, or a zero below would prove nothing.
        let probeStart = allocation_counter_allocations()
        let probe = [Int](repeating: Int(probeStart), count: 1000)
        #expect(allocation_counter_allocations() > probeStart && probe.count == 1000)
        for handler in [EventLineEcho.self, EventChunkEcho.self] as [EventStreamHandler.Type] {
            let server = try makeEventServer(handler, .init(loops: 1))
            let allocations = try countEchoAllocations(on: server)
            print("event mode, \(handler): \(allocations) heap allocations over 10,000 echoes")
            // Zero is the target; a handful allows for an unrelated thread of the test runner waking up.
            #expect(allocations < 20, "\(handler): \(allocations) allocations over 10,000 echoes")
        }
    }
}
