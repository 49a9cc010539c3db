/// One workload of the harness: what the load generator does and what is reported.
struct Workload: Sendable, Hashable {
    enum Metric: String, Codable, Sendable {
        /// Requests (echoes, connections, datagrams) per second; higher is better.
        case requestsPerSecond = "req/s"
        /// MiB per second echoed back; higher is better.
        case mebibytesPerSecond = "MiB/s"
        /// Server memory per idle connection; lower is better.
        case bytesPerConnection = "B/conn"
        /// Server heap allocations per request; lower is better.
        case allocationsPerRequest = "allocs/req"

        var higherIsBetter: Bool { self == .requestsPerSecond || self == .mebibytesPerSecond }
    }

    let id: String
    let title: String
    let kind: LoadCommand.Kind
    let connections: Int
    let metric: Metric
    /// Handler delay in milliseconds (the slow-handler workload); servers must support it.
    var delayMilliseconds: Int = 0
    /// Run the server with the allocation-counting preload.
    var countsAllocations = false
    /// The file an HTTP workload fetches, under the harness's document root.
    var path = ""

    static let echo1 = Workload(id: "echo-1", title: "echo ping-pong, 1 connection", kind: .pingPong, connections: 1, metric: .requestsPerSecond)
    static let echo10 = Workload(id: "echo-10", title: "echo ping-pong, 10 connections", kind: .pingPong, connections: 10, metric: .requestsPerSecond)
    static let echo100 = Workload(id: "echo-100", title: "echo ping-pong, 100 connections", kind: .pingPong, connections: 100, metric: .requestsPerSecond)
    static let echo1000 = Workload(id: "echo-1000", title: "echo ping-pong, 1,000 connections", kind: .pingPong, connections: 1000, metric: .requestsPerSecond)
    static let connect10 = Workload(id: "connect-10", title: "new connection per request, 10 clients", kind: .connectPerRequest, connections: 10, metric: .requestsPerSecond)
    static let udp = Workload(id: "udp-10", title: "UDP echo, 10 clients", kind: .udp, connections: 10, metric: .requestsPerSecond)
    static let slow50 = Workload(id: "slow-50", title: "slow handler (5 ms sleep), 50 connections", kind: .pingPong, connections: 50, metric: .requestsPerSecond, delayMilliseconds: 5)
    static let bulk = Workload(id: "bulk", title: "bulk transfer, 64 MiB through one connection", kind: .bulk, connections: 1, metric: .mebibytesPerSecond)
    static let idle1k = Workload(id: "idle-1000", title: "memory, 1,000 idle connections", kind: .idle, connections: 1000, metric: .bytesPerConnection)
    static let idle10k = Workload(id: "idle-10000", title: "memory, 10,000 idle connections", kind: .idle, connections: 10000, metric: .bytesPerConnection)
    static let allocations = Workload(id: "allocs", title: "heap allocations per echo, 1 connection", kind: .pingPong, connections: 1, metric: .allocationsPerRequest, countsAllocations: true)

    static let allocationsConnect = Workload(id: "allocs-connect", title: "heap allocations per connection (connect per request), 1 client", kind: .connectPerRequest, connections: 1, metric: .allocationsPerRequest, countsAllocations: true)
    static let allocationsUDP = Workload(id: "allocs-udp", title: "heap allocations per datagram, 1 client", kind: .udp, connections: 1, metric: .allocationsPerRequest, countsAllocations: true)
    static let http1k = Workload(id: "http-1k", title: "HTTP GET of a 1 KiB file, keep-alive, 100 connections", kind: .http, connections: 100, metric: .requestsPerSecond, path: "/1k.bin")
    static let http1m = Workload(id: "http-1m", title: "HTTP GET of a 1 MiB file, keep-alive, 10 connections", kind: .http, connections: 10, metric: .mebibytesPerSecond, path: "/1m.bin")

    static let all: [Workload] = [
        echo1, echo10, echo100, echo1000, connect10, udp, slow50, bulk, idle1k, idle10k, allocations,
        allocationsConnect, allocationsUDP, http1k, http1m,
    ] + tls
}
