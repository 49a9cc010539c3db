/// What one load-generator run measured; printed as one JSON line by `perf load`, read by the harness.
struct LoadResult: Codable, Sendable {
    /// Requests (echoes, connections or datagrams) completed in the measured window.
    var requests: UInt64 = 0
    /// Bytes echoed back in the measured window (bulk transfer).
    var bytes: UInt64 = 0
    /// Length of the measured window.
    var seconds: Double = 0
    /// Failed requests: refused, reset or timed-out connections, lost datagrams, short echoes.
    var errors: UInt64 = 0
    /// Connections that completed no request in the measured window (a deaf or starved server).
    var stalled: UInt64 = 0
    /// Latency percentiles in microseconds.
    var p50Micros: Double = 0
    var p99Micros: Double = 0
    var p999Micros: Double = 0
    /// Server CPU seconds (user + system, its threads and children) spent in the window.
    var serverCPUSeconds: Double = 0
    /// Server resident memory before the connections were opened and at the end of the window.
    var serverRSSBeforeBytes: UInt64 = 0
    var serverRSSBytes: UInt64 = 0
    var serverPeakRSSBytes: UInt64 = 0
    /// Server threads before the connections were opened and at the end of the window.
    var serverThreadsBefore: UInt64 = 0
    var serverThreads: UInt64 = 0
    /// CPU seconds the load generator itself used in the window (to show whether it is the bottleneck).
    var loadCPUSeconds: Double = 0
    /// Heap allocations of the server in the window, when it runs with the counting preload.
    var serverAllocations: UInt64?

    var requestsPerSecond: Double { seconds > 0 ? Double(requests) / seconds : 0 }
}
