/// The TLS workloads (issue 15's targets), each paired with nginx on the same certificate: `--workloads tls`
/// runs only these.
extension Workload {
    /// Full handshakes per second: a new connection, ECDSA P-256 handshake and one GET of 1 KiB per request.
    static let tlsConnect = Workload(
        id: "tls-connect", title: "HTTPS, new connection and full handshake per request (1 KiB), 10 clients",
        kind: .tlsRequest, connections: 10, metric: .requestsPerSecond, path: "/1k.bin")
    /// Bulk over TLS: a 64 MiB file per connection, one connection at a time.
    static let tlsBulk = Workload(
        id: "tls-bulk", title: "HTTPS, a 64 MiB file over one connection", kind: .tlsRequest, connections: 1,
        metric: .mebibytesPerSecond, path: "/64m.bin")
    /// Memory per idle TLS connection, each after a handshake and one keep-alive GET (compare idle-1000).
    static let tlsIdle = Workload(
        id: "tls-idle-1000", title: "memory, 1,000 idle HTTPS keep-alive connections", kind: .tlsIdle,
        connections: 1000, metric: .bytesPerConnection, path: "/1k.bin")

    static let tls: [Workload] = [tlsConnect, tlsBulk, tlsIdle]
}
