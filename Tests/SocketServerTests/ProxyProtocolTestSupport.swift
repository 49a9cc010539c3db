import Foundation
import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

// Support for the PROXY protocol tests: hand-built headers, handlers that report the client address they
// were given, one server per concurrency mode, and HAProxy run in front of a server.

/// Builds PROXY protocol headers byte by byte, independently of the parser.
enum ProxyHeaderBytes {
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    static func v1(_ line: String) -> [UInt8] { Array(line.utf8) }

    /// A v2 header: `command` 0 (LOCAL) or 1 (PROXY), `family` 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX, transport
    /// 1 (STREAM), then `addresses` and `tlvs` as given.
    static func v2(command: UInt8 = 1, family: UInt8, addresses: [UInt8], tlvs: [UInt8] = [], length: Int? = nil) -> [UInt8] {
        let payload = addresses + tlvs
        let declared = length ?? payload.count
        return v2Signature + [0x20 | command, family << 4 | 0x1, UInt8(declared >> 8), UInt8(declared & 0xFF)] + payload
    }

    static func ipv4(_ text: String) -> [UInt8] {
        var address = in_addr()
        precondition(inet_pton(AF_INET, text, &address) == 1)
        return withUnsafeBytes(of: address) { Array($0) }
    }

    static func ipv6(_ text: String) -> [UInt8] {
        var address = in6_addr()
        precondition(inet_pton(AF_INET6, text, &address) == 1)
        return withUnsafeBytes(of: address) { Array($0) }
    }

    static func port(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

    /// A 108-byte `sun_path` field.
    static func unixPath(_ path: String) -> [UInt8] {
        let bytes = Array(path.utf8)
        return bytes + [UInt8](repeating: 0, count: 108 - bytes.count)
    }

    static func tlv(_ type: UInt8, _ value: [UInt8]) -> [UInt8] {
        [type, UInt8(value.count >> 8), UInt8(value.count & 0xFF)] + value
    }

    /// PROXY TCP4 from `source` to 10.0.0.1:443.
    static func tcp4(from source: String, port sourcePort: UInt16, tlvs: [UInt8] = []) -> [UInt8] {
        v2(family: 1, addresses: ipv4(source) + ipv4("10.0.0.1") + port(sourcePort) + port(443), tlvs: tlvs)
    }
}

/// Writes `client=ADDRESS\n`, then echoes one line: shows the address and that no byte after the header was
/// lost.
final class ProxiedAddressEchoHandler: StreamRequestHandler {
    override func handle() throws {
        try wfile.write("client=\(clientAddress)\n")
        try wfile.write(try rfile.readLine())
    }
}

/// The same in event mode.
final class EventProxiedAddressEchoHandler: EventStreamHandler {
    override func connectionOpened(_ connection: EventConnection) throws {
        connection.write("client=\(connection.clientAddress)\n")
    }

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        if let line = input.readLine() {
            connection.write(line)
            connection.close()
        }
    }
}

/// The same as an async handler.
final class AsyncProxiedAddressEchoHandler: AsyncStreamRequestHandler {
    override func handle() async throws {
        try await wfile.write("client=\(clientAddress)\n")
        try await wfile.write(try await rfile.readLine())
    }
}

/// Records the addresses `verifyRequest` saw; refuses clients from `refused`.
final class ProxyVerifyingServer: TCPServer, @unchecked Sendable {
    let verified = SanitizedMutex<[SocketAddress]>([])
    let refusedHost = SanitizedMutex<String?>(nil)

    override func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool {
        verified.withLock { $0.append(clientAddress) }
        guard let refused = refusedHost.withLock({ $0 }) else { return true }
        return refused != clientAddress.host
    }
}

/// The concurrency modes a stream server runs in, for tests that cover every one.
enum ProxyTestMode: String, CaseIterable, CustomStringConvertible, Sendable {
    case sync, threading, forking, pool, event, async

    var description: String { rawValue }


    /// A server on `address` in this mode with `proxy` configured, logging into `logger`.
    func makeServer(
        _ address: SocketAddress = .loopback(),
        proxy: ProxyProtocolConfiguration,
        logger: Logger
    ) throws -> ProxyVerifyingServer {
        let configuration = ServerConfiguration(proxyProtocol: proxy)
        switch self {
        case .sync, .threading, .forking, .pool:
            let mode: any ConcurrencyMode =
                switch self {
                case .threading: ThreadingMode()
                case .forking: ForkingMode()
                case .pool: ThreadPoolMode(workers: 2)
                default: SynchronousMode()
                }
            return try ProxyVerifyingServer(
                address, handler: ProxiedAddressEchoHandler.self, configuration: configuration, mode: mode, logger: logger)
        case .event:
            return try ProxyVerifyingServer(
                address, configuration: configuration,
                mode: EventMode(handler: EventProxiedAddressEchoHandler.self, configuration: .init(loops: 1)),
                logger: logger, makeHandler: nil)
        case .async:
            return try ProxyVerifyingServer(
                address, configuration: configuration,
                mode: EventMode(configuration: .init(loops: 1)) { AsyncProxiedAddressEchoHandler($0) },
                logger: logger, makeHandler: nil)
        }
    }
}

/// A client that sends `bytes` (a header and what follows) and reads everything the server answers.
func exchange(with address: SocketAddress, sending bytes: [UInt8], timeout: Duration = .seconds(10)) throws -> String {
    let client = try TestClient(connectingTo: address, timeout: timeout)
    defer { client.close() }
    try client.socket.sendAll(bytes)
    return (try? client.readToEnd()) ?? ""
}

/// HAProxy (`haproxy -db`, in the foreground) with one TCP frontend on a free loopback port that forwards to
/// `backend` with `send-proxy` or `send-proxy-v2`. Stopped (and reaped) by `stop()` or at the end of life.
final class HAProxyProcess {
    let pid: pid_t
    let frontendPort: Int
    private let directory = TemporaryDirectory()
    private var exited = false

    /// - Parameter sendProxy: `send-proxy` or `send-proxy-v2`.
    init(backend: SocketAddress, sendProxy: String, frontendIPv6: Bool = false) throws {
        frontendPort = try Self.freePort(ipv6: frontendIPv6)
        let bind = frontendIPv6 ? "[::1]:\(frontendPort)" : "127.0.0.1:\(frontendPort)"
        let target = backend.family == .unix ? "unix@\(backend.path ?? "")" : "\(backend)"
        let configuration = """
            global
                maxconn 256
            defaults
                mode tcp
                timeout connect 5s
                timeout client 30s
                timeout server 30s
            frontend front
                bind \(bind)
                default_backend back
            backend back
                server app \(target) \(sendProxy)

            """
        let path = directory.path + "/haproxy.cfg"
        try configuration.write(toFile: path, atomically: true, encoding: .utf8)
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        let log = open(directory.path + "/haproxy.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer {
            close(devNull)
            close(log)
        }
        pid = try spawnProcess(["haproxy", "-db", "-f", path], stdin: devNull, stdout: log, stderr: log, newGroup: true)
        // Ready once the frontend accepts.
        let ready = eventually(within: .seconds(20)) {
            guard let socket = try? Socket(family: frontendIPv6 ? .inet6 : .inet, type: .stream) else { return false }
            defer { socket.close() }
            let address = frontendIPv6 ? SocketAddress.loopbackIPv6(port: frontendPort) : .loopback(port: frontendPort)
            return (try? socket.connect(to: address)) != nil
        }
        guard ready else {
            stop()
            throw DemoHarnessError(description: "haproxy did not listen on \(bind): \(log_)")
        }
    }

    deinit {
        stop()
        directory.cleanup()
    }

    /// What HAProxy printed.
    var log_: String { (try? String(contentsOfFile: directory.path + "/haproxy.log", encoding: .utf8)) ?? "" }

    var frontend: SocketAddress { .loopback(port: frontendPort) }

    func stop() {
        guard !exited else { return }
        exited = true
        kill(-pid, SIGTERM)
        if waitForProcessExit(pid, timeout: .seconds(10)) == nil {
            kill(-pid, SIGKILL)
            _ = waitForProcessExit(pid, timeout: .seconds(10))
        }
    }

    /// A port nothing listens on right now (bound and released; HAProxy cannot bind port 0 and report it).
    static func freePort(ipv6: Bool = false) throws -> Int {
        let socket = try Socket(family: ipv6 ? .inet6 : .inet, type: .stream)
        defer { socket.close() }
        try socket.bind(to: ipv6 ? .loopbackIPv6() : .loopback())
        return try socket.localAddress.port ?? 0
    }
}
