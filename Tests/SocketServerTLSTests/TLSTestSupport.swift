import Foundation
import Glibc
import Logging
import SocketServer
import SocketServerTLS
import Synchronization
import Testing

// Support for the TLS tests: certificates made by `openssl` in a temporary directory for each test, servers
// in every mode, and the real clients (openssl s_client, curl, Python's ssl module) run as child processes.

/// Every stream mode TLS is tested in.
let tlsModes = ["sync", "threading", "forking", "pool", "event", "async"]
/// The modes that serve several connections at once.
let tlsConcurrentModes = ["threading", "forking", "pool", "event", "async"]

/// A fresh directory, removed by `cleanup()`.
struct ScratchDirectory {
    let path: String

    init() {
        var template = Array("/tmp/socketserver-tls-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.flatMap { mkdtemp($0) }.map { String(cString: $0) }
        }
        path = made ?? "/tmp"
    }

    func file(_ name: String) -> String { path + "/" + name }

    func cleanup() {
        _ = try? FileManager.default.removeItem(atPath: path)
    }
}

/// What a child process printed and how it exited.
struct ToolResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs `arguments` (a program on the PATH and its arguments) with `input` on stdin, killing it after
/// `timeout`. Output goes to files (no reader threads), read once the process has exited.
func runTool(_ arguments: [String], input: [UInt8] = [], timeout: Duration = .seconds(30)) throws -> ToolResult {
    let scratch = ScratchDirectory()
    defer { scratch.cleanup() }
    try Data(input).write(to: URL(fileURLWithPath: scratch.file("stdin")))
    _ = FileManager.default.createFile(atPath: scratch.file("stdout"), contents: nil)
    _ = FileManager.default.createFile(atPath: scratch.file("stderr"), contents: nil)
    let stdin = try FileHandle(forReadingFrom: URL(fileURLWithPath: scratch.file("stdin")))
    let stdout = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch.file("stdout")))
    let stderr = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch.file("stderr")))
    defer {
        try? stdin.close()
        try? stdout.close()
        try? stderr.close()
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while process.isRunning && ContinuousClock.now < deadline { usleep(5_000) }
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
        throw ToolTimeout(command: arguments.joined(separator: " "))
    }
    process.waitUntilExit()
    let out = try Data(contentsOf: URL(fileURLWithPath: scratch.file("stdout")))
    let err = try Data(contentsOf: URL(fileURLWithPath: scratch.file("stderr")))
    return ToolResult(
        status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
        stderr: String(decoding: err, as: UTF8.self))
}

struct ToolTimeout: Error, CustomStringConvertible {
    let command: String
    var description: String { "\(command) did not finish in time" }
}

/// Certificates for one test, made with `openssl`: a CA, a server certificate for localhost / 127.0.0.1 /
/// ::1 (ECDSA P-256), a second server name (SNI), client certificates (good, signed by another CA, expired),
/// the server key encrypted with a password file.
struct TestPKI {
    let directory = ScratchDirectory()

    var caFile: String { directory.file("ca.pem") }
    var serverCertificate: String { directory.file("server.pem") }
    var serverKey: String { directory.file("server.key") }
    var encryptedServerKey: String { directory.file("server-encrypted.key") }
    var passwordFile: String { directory.file("password.txt") }
    var otherCertificate: String { directory.file("other.pem") }
    var otherKey: String { directory.file("other.key") }
    var clientCertificate: String { directory.file("client.pem") }
    var clientKey: String { directory.file("client.key") }
    var wrongCAClientCertificate: String { directory.file("stranger.pem") }
    var wrongCAClientKey: String { directory.file("stranger.key") }
    var expiredClientCertificate: String { directory.file("expired.pem") }
    var expiredClientKey: String { directory.file("expired.key") }

    func file(_ name: String) -> String { directory.file(name) }

    var serverSource: TLSCertificateSource { .files(certificateChain: serverCertificate, privateKey: serverKey) }

    init() throws {
        let script = #"""
            set -e
            cd "$1"
            key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
            key ca.key
            openssl req -x509 -new -key ca.key -subj "/CN=SocketServer Test CA" -days 2 -out ca.pem
            key other-ca.key
            openssl req -x509 -new -key other-ca.key -subj "/CN=Stranger CA" -days 2 -out other-ca.pem
            sign() { # name subject san ca
                key "$1.key"
                openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
                printf '%s\n' "$3" > "$1.ext"
                openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial -days 2 \
                    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
            }
            sign server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" ca
            sign other "/CN=other.test" "subjectAltName=DNS:other.test" ca
            sign client "/O=Example/CN=alice" "extendedKeyUsage=clientAuth" ca
            sign stranger "/CN=mallory" "extendedKeyUsage=clientAuth" other-ca
            key expired.key
            openssl req -new -key expired.key -subj "/CN=expired" -out expired.csr
            mkdir -p db && : > db/index.txt && echo 01 > db/serial
            printf '%s\n' '[ca]' 'default_ca=test' '[test]' 'database=db/index.txt' 'new_certs_dir=db' \
                'serial=db/serial' 'default_md=sha256' 'policy=any' '[any]' 'commonName=supplied' > ca.cnf
            openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem \
                -startdate 20200101000000Z -enddate 20200102000000Z -notext 2>/dev/null
            printf 'correct horse battery\n' > password.txt
            openssl pkcs8 -topk8 -in server.key -out server-encrypted.key -v2 aes-256-cbc \
                -passout pass:'correct horse battery'
            """#
        let result = try runTool(["bash", "-c", script, "pki", directory.path])
        guard result.status == 0 else {
            directory.cleanup()
            throw ToolTimeout(command: "certificate generation failed: \(result.stderr)")
        }
    }

    func cleanup() { directory.cleanup() }
}

/// `serveForever` on a thread of its own; `stop()` shuts the server down, joins and closes it.
final class Serving: @unchecked Sendable {
    private final class Outcome: Sendable {
        let done = Atomic(false)
        let failure = SanitizedMutex<String?>(nil)
    }

    let server: TCPServer
    private let thread: Thread
    private let outcome = Outcome()

    init(_ server: TCPServer) {
        self.server = server
        let outcome = self.outcome
        thread = Thread {
            do {
                try server.serveForever(pollInterval: .milliseconds(50))
            } catch {
                outcome.failure.withLock { $0 = "\(error)" }
            }
            outcome.done.store(true, ordering: .sequentiallyConsistent)
        }
        thread.start()
    }

    /// The bound TCP port.
    var port: Int { server.serverAddress.port ?? 0 }

    func stop() {
        server.shutdown()
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while !outcome.done.load(ordering: .sequentiallyConsistent) && ContinuousClock.now < deadline { usleep(2_000) }
        server.serverClose()
        if let failure = outcome.failure.withLock({ $0 }) { Issue.record("serveForever threw: \(failure)") }
    }
}

/// What the test echo handlers answer to the line `info`: the TLS facts the handler sees.
func describe(_ tls: TLSConnectionInfo?) -> String {
    guard let tls else { return "plain\n" }
    let verification: String
    switch tls.peerVerification {
    case .noCertificate: verification = "no-certificate"
    case .verified: verification = "verified"
    case .failed(let reason): verification = "failed:\(reason)"
    }
    return "\(tls.protocolVersion) alpn=\(tls.alpnProtocol ?? "-") sni=\(tls.serverName ?? "-") "
        + "subject=\(tls.peerSubject ?? "-") \(verification)\n"
}

/// Echoes lines; `info` answers with `describe(tls)`, `quit` ends the connection.
final class TLSEchoHandler: StreamRequestHandler {
    override func handle() throws {
        while true {
            let line = try rfile.readLine()
            if line.isEmpty { return }
            if line == Array("info\n".utf8) {
                try wfile.write(describe(connection.tls))
            } else if line == Array("quit\n".utf8) {
                return
            } else {
                try wfile.write(line)
            }
        }
    }
}

/// The event-mode `TLSEchoHandler`.
final class TLSEventEchoHandler: EventStreamHandler {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while let line = input.readLine() {
            if line.elementsEqual("info\n".utf8) {
                connection.write(describe(connection.tls))
            } else if line.elementsEqual("quit\n".utf8) {
                connection.close()
                return
            } else {
                connection.write(line)
            }
        }
    }

    override func inputEnded(_ input: inout EventInput, on connection: EventConnection) throws {
        connection.close()
    }
}

/// The async-mode `TLSEchoHandler`.
final class TLSAsyncEchoHandler: AsyncStreamRequestHandler {
    override func handle() async throws {
        for try await line in rfile.lines {
            if line == Array("info\n".utf8) {
                try await wfile.write(describe(context.tls))
            } else if line == Array("quit\n".utf8) {
                return
            } else {
                try await wfile.write(line)
            }
        }
    }
}

/// A server of `mode` with the TLS echo handlers, bound to `address`, with `context`; not yet serving.
func makeTLSEchoServer(
    mode: String, context: TLSContext, address: SocketAddress = .loopback(port: 0), logger: Logger? = nil
) throws -> TCPServer {
    let server: TCPServer
    switch mode {
    case "event":
        server = try TCPServer(
            address, eventHandler: TLSEventEchoHandler.self, configuration: .init(loops: 2), logger: logger)
    case "async":
        server = try TCPServer(
            address, asyncHandler: TLSAsyncEchoHandler.self, configuration: .init(loops: 2), logger: logger)
    default:
        let concurrency: any ConcurrencyMode =
            switch mode {
            case "threading": ThreadingMode()
            case "forking": ForkingMode()
            case "pool": ThreadPoolMode(workers: 4)
            default: SynchronousMode()
            }
        server = try TCPServer(address, handler: TLSEchoHandler.self, mode: concurrency, logger: logger)
    }
    server.useTLS(context)
    return server
}

/// `openssl s_client` against 127.0.0.1:`port` with `input`, trusting the test CA and failing on a bad
/// server certificate; waits for the server to close (`-quiet`).
func sClient(port: Int, pki: TestPKI, input: String, extra: [String] = []) throws -> ToolResult {
    try runTool(
        ["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", pki.caFile, "-verify_return_error",
         "-quiet"] + extra,
        input: Array(input.utf8))
}

/// A Python client (the `ssl` module) that connects to 127.0.0.1:`port`, sends `lines` lines of `size`
/// bytes (or the given text) and prints what came back; extra flags select client certificates.
let pythonClient = #"""
    import socket, ssl, sys, argparse, struct, time
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int); p.add_argument("cafile")
    p.add_argument("--bytes", type=int, default=0); p.add_argument("--text", default="")
    p.add_argument("--host", default="127.0.0.1"); p.add_argument("--unix", default="")
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--pause-at", type=int, default=0); p.add_argument("--reset-after", type=int, default=-1)
    a = p.parse_args()
    ctx = ssl.create_default_context(cafile=a.cafile)
    ctx.check_hostname = not a.unix
    for n in range(a.connections):
        raw = socket.socket(socket.AF_UNIX) if a.unix else socket.create_connection((a.host, a.port), timeout=30)
        if a.unix:
            raw.settimeout(30); raw.connect(a.unix)
        s = ctx.wrap_socket(raw, server_hostname=None if a.unix else "localhost")
        payload = a.text.encode() if a.text else bytes((i * 7 + n) % 251 for i in range(a.bytes - 1)) + b"\n"
        got = bytearray()
        if a.reset_after >= 0:
            # Send, read that much back, then reset the connection (SO_LINGER 0) in the middle of the echo.
            sent = 0
            while len(got) < a.reset_after:
                s.sendall(payload[sent:sent + 16384]); sent += 16384
                while len(got) < min(sent - 65536, a.reset_after):
                    got += s.recv(65536)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            print("reset"); sys.exit(0)
        s.sendall(payload + b"quit\n")
        if a.pause_at:
            # Read exactly up to the server's output watermark, then stop reading for a while.
            while len(got) < a.pause_at:
                got += s.recv(a.pause_at - len(got))
            time.sleep(0.5)
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            got += chunk
        if got != payload:
            print("mismatch on connection %d: sent %d bytes, got %d" % (n, len(payload), len(got))); sys.exit(1)
        version = s.version()
        s.close()
    print("ok %s" % version)
    """#

/// Runs `pythonClient` with `arguments`.
func runPythonClient(_ arguments: [String], directory: ScratchDirectory) throws -> ToolResult {
    let script = directory.file("client.py")
    if !FileManager.default.fileExists(atPath: script) {
        try pythonClient.write(toFile: script, atomically: true, encoding: .utf8)
    }
    return try runTool(["python3", script] + arguments, timeout: .seconds(60))
}

/// Polls `condition` every few milliseconds until it holds or `limit` passes.
func eventually(within limit: Duration = .seconds(20), _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now.advanced(by: limit)
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

/// A log handler keeping every message, to check what a server logged and at which level.
struct RecordingLogHandler: LogHandler {
    final class Store: Sendable {
        let entries = SanitizedMutex<[(Logger.Level, String)]>([])
        var all: [(Logger.Level, String)] { entries.withLock { $0 } }
    }

    let store: Store
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        store.entries.withLock { $0.append((event.level, event.message.description)) }
    }

    static func makeLogger() -> (Logger, Store) {
        let store = Store()
        return (Logger(label: "tls-test") { _ in RecordingLogHandler(store: store) }, store)
    }
}
