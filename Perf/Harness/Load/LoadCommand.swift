import ArgumentParser
import CPerfTLS
import Foundation
import Glibc

/// `perf load`: the load generator, run by the harness in its own process on its own core. Prints one
/// JSON `LoadResult` line on stdout.
struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Internal: drive one server for one slice and print the measurements as JSON.",
        shouldDisplay: false
    )

    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case pingPong = "ping-pong", connectPerRequest = "connect", udp, bulk, idle, http
        /// HTTPS, a new connection and full handshake per request; with `--path` a large file, bulk over TLS.
        case tlsRequest = "tls-request"
        /// Idle HTTPS keep-alive connections, each after one request (memory per idle TLS connection).
        case tlsIdle = "tls-idle"

        var isTLS: Bool { self == .tlsRequest || self == .tlsIdle }
        /// Memory workloads: connections opened once and left idle.
        var isIdle: Bool { self == .idle || self == .tlsIdle }
    }

    @Option(help: "What to do: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")).") var kind: Kind
    @Option(help: "Server address, HOST:PORT (IPv4).") var address: String
    @Option(help: "Concurrent connections or clients.") var connections: Int = 1
    @Option(help: "Warm-up seconds before the measured window.") var warmup: Double = 0.1
    @Option(help: "Measured seconds.") var duration: Double = 0.3
    @Option(help: "The server's pid, for CPU and memory from /proc.") var serverPid: Int32
    @Option(help: "Bytes to stream (bulk).") var bytes: Int = 64 << 20
    @Option(help: "Seconds to let the server settle before sampling RSS (idle).") var settle: Double = 0.5
    @Option(help: "Allocation counter file of a server run with the malloc_count preload.") var mallocFile: String?
    @Option(help: "The path an HTTP load fetches (http, tls-request, tls-idle).") var path: String = "/"
    @Option(help: "The PEM certificate the TLS loads trust (tls-request, tls-idle).") var caFile: String?

    func validate() throws {
        guard IPv4Endpoint(address) != nil else { throw ValidationError("bad --address \(address)") }
        guard connections > 0, connections <= 100_000 else { throw ValidationError("bad --connections") }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        raiseOpenFileLimit()
        guard let endpoint = IPv4Endpoint(address) else { throw ValidationError("bad --address") }
        let counter = mallocFile.flatMap { AllocationCounter(path: $0) }
        var window = MeasuredWindow(serverPID: serverPid, allocationCounter: counter, warmup: warmup, duration: duration)
        let result: LoadResult
        switch kind {
        case .pingPong: result = PingPongLoad(endpoint: endpoint, connections: connections).run(&window)
        case .connectPerRequest: result = ConnectPerRequestLoad(endpoint: endpoint, clients: connections).run(&window)
        case .udp: result = DatagramEchoLoad(endpoint: endpoint, clients: connections).run(&window)
        case .bulk: result = BulkTransferLoad(endpoint: endpoint, totalBytes: bytes).run(&window)
        case .http: result = HTTPKeepAliveLoad(endpoint: endpoint, connections: connections, path: path).run(&window)
        case .tlsRequest, .tlsIdle:
            guard let caFile, let client = perf_tls_client_new(caFile) else {
                throw ValidationError("--ca-file missing or unreadable: the TLS loads need the server's certificate")
            }
            defer { perf_tls_client_free(client) }
            result = kind == .tlsRequest
                ? TLSRequestLoad(endpoint: endpoint, clients: connections, path: path, client: client).run(&window)
                : TLSIdleLoad(endpoint: endpoint, connections: connections, path: path, settleSeconds: settle, client: client)
                    .run(&window)
        case .idle:
            result = IdleConnectionsLoad(endpoint: endpoint, connections: connections, settleSeconds: settle).run(&window)
        }
        let data = try JSONEncoder().encode(result)
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}
