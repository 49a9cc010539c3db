/// A server the harness can run: one of SocketServer's modes (through `socketserver-demo`) or a peer.
struct ServerSpec: Sendable {
    enum Family: String, Codable, Sendable { case mode, peer }

    /// How the server spreads connections, which decides where it can take part.
    enum Concurrency: String, Codable, Sendable {
        /// One connection at a time: persistent-connection workloads past 1 connection would only stall.
        case sequential
        /// A thread per connection (or a pool of threads).
        case threads
        /// A process per connection: too heavy for 1,000 connections.
        case processes
        /// An event loop: any number of connections.
        case eventLoop
    }

    let id: String
    let label: String
    let family: Family
    let concurrency: Concurrency
    /// The TCP echo command, given the handler delay in ms (0 = none); nil when not offered.
    let tcp: (@Sendable (_ delayMilliseconds: Int) -> [String])?
    /// The UDP echo command; nil when not offered.
    let udp: (@Sendable () -> [String])?
    /// Whether the TCP command honours a handler delay.
    let supportsDelay: Bool
    /// The HTTP file server command, given the document root and the port to listen on (a server that
    /// announces its address gets 0); nil when not offered.
    var http: (@Sendable (_ documentRoot: String, _ port: Int) -> [String])? = nil
    /// The HTTPS file server command on the run's certificate (the TLS workloads), as `http`; nil when not offered.
    var https: (@Sendable (_ documentRoot: String, _ port: Int) -> [String])? = nil
    /// Whether the server prints `listening on HOST:PORT` (nginx does not: the harness picks its port and waits
    /// until it accepts connections).
    var announcesAddress = true
    /// The TCP echo command for the idle-connection workloads when it differs (event and async modes run 2 loops
    /// there, as issue 11's target asks); nil: `tcp`.
    var idleTCP: (@Sendable () -> [String])? = nil

    /// The command for `workload`, or the reason this server sits it out.
    func command(for workload: Workload, documentRoot: String = "", port: Int = 0) -> Result<[String], SkipReason> {
        if workload.kind.isTLS {
            guard let https else { return .failure(SkipReason("no HTTPS file server")) }
            if concurrency == .sequential && workload.kind == .tlsIdle {
                return .failure(SkipReason("serves one connection at a time"))
            }
            return .success(https(documentRoot, port))
        }
        if workload.kind == .http {
            guard let http else { return .failure(SkipReason("no HTTP file server")) }
            return .success(http(documentRoot, port))
        }
        if workload.kind == .udp {
            guard let udp else { return .failure(SkipReason("no UDP echo")) }
            return .success(udp())
        }
        guard let tcp else { return .failure(SkipReason("no TCP echo")) }
        if workload.countsAllocations && id.hasPrefix("py-") {
            return .failure(SkipReason("pymalloc bypasses malloc, so the counter would read a false 0"))
        }
        if workload.delayMilliseconds > 0 && !supportsDelay {
            return .failure(SkipReason("no handler-delay option"))
        }
        let persistent = workload.kind == .pingPong || workload.kind == .idle
        if concurrency == .sequential && (workload.kind == .idle
            || (workload.kind == .pingPong && workload.connections > 1 && workload.delayMilliseconds == 0))
        {
            return .failure(SkipReason("serves one connection at a time"))
        }
        if concurrency == .processes && (workload.kind == .idle || (persistent && workload.connections >= 1000)) {
            return .failure(SkipReason("a process per connection: too heavy at this count"))
        }
        if concurrency == .threads && workload.kind == .idle && workload.connections > 1000 {
            return .failure(SkipReason("a thread per connection: measured at 1,000 only"))
        }
        if workload.kind == .idle, let idleTCP { return .success(idleTCP()) }
        return .success(tcp(workload.delayMilliseconds))
    }
}

/// Why a server does not take part in a workload.
struct SkipReason: Error, Sendable, Codable {
    let text: String
    init(_ text: String) { self.text = text }
}
