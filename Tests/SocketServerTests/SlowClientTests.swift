import Foundation
import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

/// A shell script run by `/bin/sh -c` in a process group of its own, in the background: slow clients made
/// of `sh`, `sleep` and `socat`, so that nothing of them runs in this process (a forking server may fork at
/// any moment). `stop()` kills the whole group and reaps the shell.
private final class BackgroundShell {
    let pid: pid_t

    init(_ script: String) throws {
        let words: [String] = ["sh", "-c", script]
        let arguments: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) }
        defer { for argument in arguments { free(argument) } }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGCHLD, SIGPIPE, SIGINT, SIGTERM] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        var pid: pid_t = 0
        let spawned = (arguments + [nil]).withUnsafeBufferPointer { argv -> Int32 in
            guard let base = argv.baseAddress else { return EINVAL }
            return posix_spawn(&pid, "/bin/sh", nil, &attributes, UnsafeMutablePointer(mutating: base), environ)
        }
        guard spawned == 0 else { throw SocketError(operation: "posix_spawn", code: spawned) }
        self.pid = pid
    }

    /// Waits up to `limit` for the shell to exit; its exit status (128 + signal when killed), or nil.
    func wait(within limit: Duration) -> Int32? {
        var status: Int32 = 0
        var exited = false
        _ = eventually(within: limit) {
            let result = waitpid(pid, &status, WNOHANG)
            exited = result == pid
            return exited || (result < 0 && errno != EINTR)
        }
        guard exited else { return nil }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Kills the shell and everything it started, and reaps the shell.
    func stop() {
        kill(-pid, SIGKILL)
        _ = wait(within: .seconds(10))
    }
}

/// The shell for one slowloris connection to `port`: one byte every 0.4 s, `bytes` bytes at most, never a
/// newline, through `socat`. When the loop runs to its end (the server never cut the connection), it writes
/// `full` to `marker`; when the server closes the connection, socat exits and the loop dies of SIGPIPE.
private func slowlorisScript(port: Int, bytes: Int, marker: String = "/dev/null") -> String {
    "{ i=0; while [ $i -lt \(bytes) ]; do printf a; sleep 0.4; i=$((i+1)); done; echo full > \(marker); } "
        + "| socat -t1 - TCP:127.0.0.1:\(port) > /dev/null 2>&1"
}

/// One quick request from another process: a line through socat, its echo in `output`.
private func quickRoundTrip(port: Int, in directory: TemporaryDirectory, _ line: String) throws -> String {
    let output = directory.path + "/quick-\(line)"
    let status = ModeTest.runShell("printf '\(line)\\n' | socat -t5 - TCP:127.0.0.1:\(port) > \(output)")
    #expect(status == 0, "socat exited \(String(describing: status))")
    return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
}

private func makeMode(_ name: String) -> any ConcurrencyMode {
    switch name {
    case "threading": ThreadingMode()
    case "forking": ForkingMode()
    case "pool": ThreadPoolMode(workers: 2)
    default: SynchronousMode()
    }
}

private let slowClientsAvailable = access("/usr/bin/socat", X_OK) == 0 || access("/bin/socat", X_OK) == 0

@Suite(
    "Slow clients in every mode: requestTimeout bounds the blocking modes; event and async lose only buffers",
    .serialized,
    .enabled(if: slowClientsAvailable, "socat is not installed (make deps installs it)"))
struct SlowClientTests {
    @Test("a slowloris (a byte every 0.4 s, no newline) is cut off at the deadline; the server serves on",
          arguments: ["sync", "threading", "forking", "pool"])
    func slowlorisIsCutOff(mode name: String) throws {
        let watchdog = name == "forking" ? try ForkWatchdog() : nil
        defer { watchdog?.stop() }
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let (logger, store) = RecordingLogHandler.makeLogger()
        let limit = Duration.seconds(1)
        let server = try TCPServer(
            .loopback(), handler: LineEchoHandler.self,
            configuration: ServerConfiguration(requestTimeout: limit), mode: makeMode(name), logger: logger)
        #expect(server.requestTimeout == limit && server.configuration.requestTimeout == limit)
        try withServing(server) { server throws in
            let port = server.serverAddress.port ?? 0
            let marker = directory.path + "/full"
            // 25 bytes would take 10 s; the deadline cuts the connection after 1 s.
            var status: Int32?
            let took = ModeTest.timed {
                status = ModeTest.runShell(slowlorisScript(port: port, bytes: 25, marker: marker))
            }
            #expect(status != nil)
            #expect(access(marker, F_OK) != 0, "the server closed the connection before the slow client finished")
            #expect(took >= limit, "not before the deadline: \(took)")
            #expect(try quickRoundTrip(port: port, in: directory, "after") == "after\n", "the server serves on")
        }
        if name != "forking" {  // a forked child logs in its own process
            #expect(store.all.contains {
                $0.0 == .info && "\($0.2["socketserver.error"] ?? "")".contains("recv past the request deadline")
            }, "logged at info: \(store.messages)")
        }
        #expect(!store.all.contains { $0.0 >= .error }, "\(store.messages)")
    }

    @Test("with the deadline, quick clients are served while 20 slow ones keep a 2-worker pool busy")
    func poolServesQuickClientsUnderSlowloris() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let (logger, store) = RecordingLogHandler.makeLogger()
        let pool = ThreadPoolMode(workers: 2)
        let server = try TCPServer(
            .loopback(), handler: LineEchoHandler.self,
            configuration: ServerConfiguration(requestTimeout: .milliseconds(500)), mode: pool, logger: logger)
        try withServing(server) { server throws in
            let port = server.serverAddress.port ?? 0
            // 20 slow clients, each reconnecting when cut off, for at most 8 rounds of 60 bytes (24 s each).
            let one = slowlorisScript(port: port, bytes: 60)
            let attack = try BackgroundShell(
                "for n in $(seq 20); do ( for r in $(seq 8); do \(one); done ) & done; wait")
            defer { attack.stop() }
            #expect(eventually { pool.activeRequests == 2 && pool.queuedRequests >= 4 }, "the slow clients hold the pool")
            // Five quick clients at once, each willing to wait 20 s: without the deadline the slow ones
            // would hold both workers for 24 s a connection.
            let quick = (0..<5).map { index in
                "printf 'quick\(index)\\n' | socat -t20 - TCP:127.0.0.1:\(port) > \(directory.path)/quick\(index) &"
            }
            #expect(ModeTest.runShell(quick.joined(separator: " ") + " wait") == 0)
            for index in 0..<5 {
                let reply = try? String(contentsOfFile: directory.path + "/quick\(index)", encoding: .utf8)
                #expect(reply == "quick\(index)\n", "quick client \(index) served")
            }
            #expect(attack.wait(within: .zero) == nil, "the slow clients were still at it throughout")
        }
        let cutOff = store.all.filter { "\($0.2["socketserver.error"] ?? "")".contains("past the request deadline") }
        #expect(cutOff.count >= 2, "slow clients were cut off at the deadline")
        #expect(cutOff.allSatisfy { $0.0 == .info })
    }

    @Test("event and async modes: 20 slow clients cost only their buffers; quick clients are served at once",
          arguments: ["event", "async"])
    func loopModesServeQuickClientsUnderSlowloris(mode name: String) throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        // One loop, no deadline: the slow clients stay connected, sending a byte every 0.4 s (within the
        // idle timeout), and never hold the loop.
        let configuration = EventMode.Configuration(loops: 1, idleTimeout: .seconds(5))
        let server =
            name == "event"
            ? try TCPServer(.loopback(), eventHandler: EventLineEcho.self, configuration: configuration)
            : try TCPServer(.loopback(), asyncHandler: AsyncLineEcho.self, configuration: configuration)
        try withServing(server) { server throws in
            let port = server.serverAddress.port ?? 0
            let attack = try BackgroundShell(
                "for n in $(seq 20); do ( \(slowlorisScript(port: port, bytes: 60)) ) & done; wait")
            defer { attack.stop() }
            #expect(eventually { eventMode(of: server).connectionCount >= 20 }, "the slow clients are connected")
            for index in 0..<5 {
                #expect(try quickRoundTrip(port: port, in: directory, "quick\(index)") == "quick\(index)\n")
            }
            #expect(eventMode(of: server).connectionCount >= 20, "the slow clients are still connected")
            #expect(attack.wait(within: .zero) == nil, "and still at it")
        }
    }

    @Test("requestTimeout must be positive, and event and async modes refuse it")
    func validation() throws {
        for bad in [Duration.zero, .seconds(-1)] {
            #expect(throws: SocketServerError.self) {
                _ = try TCPServer(.loopback(), handler: LineEchoHandler.self,
                                  configuration: ServerConfiguration(requestTimeout: bad))
            }
        }
        #expect(throws: SocketServerError.self) {
            _ = try TCPServer(.loopback(), configuration: ServerConfiguration(requestTimeout: .seconds(1)),
                              mode: EventMode(handler: EventLineEcho.self), makeHandler: nil)
        }
    }

    @Test("Socket.deadline: a receive past it throws, whatever the per-call timeout; clearing it restores that")
    func socketDeadline() throws {
        let server = try TCPServer(.loopback(), handler: LineEchoHandler.self, mode: ThreadingMode())
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress, timeout: .seconds(5))
            defer { client.close() }
            client.socket.deadline = .now + .milliseconds(300)
            var buffer = [UInt8](repeating: 0, count: 16)
            let error = #expect(throws: SocketError.self) {
                _ = try buffer.withUnsafeMutableBytes { try client.socket.receive(into: $0) }
            }
            #expect(error?.isTimeout == true)
            #expect(error?.operation == "recv past the request deadline")
            #expect(throws: SocketError.self) { try client.send("late\n") }
            client.socket.deadline = nil
            try client.send("again\n")
            #expect(try client.readLine() == "again\n", "no deadline: the socket works as before")
        }
    }
}
