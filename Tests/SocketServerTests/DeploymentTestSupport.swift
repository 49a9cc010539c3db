import CSocketServerShims
import Foundation
import Glibc
import Testing

@testable import SocketServer

// Support for the deployment tests: programs started by a test (systemd-socket-activate, HAProxy, the demo as a
// master of workers), free loopback ports for launchers that cannot take port 0, processes that outlive their
// parent (a restarted demo), and a client that keeps sending requests and counts what failed.

/// A port on 127.0.0.1 free a moment ago, for programs that need a number (systemd-socket-activate, HAProxy);
/// the kernel picks it (port 0), then the socket is closed.
func freeLoopbackPort(_ type: SocketType = .stream) throws -> Int {
    let probe = try Socket(family: .inet, type: type)
    defer { probe.close() }
    try probe.bind(to: .loopback(port: 0))
    return try probe.localAddress.port ?? 0
}

/// A program started by a test in its own process group, stdout on a pipe read line by line, stderr to a
/// file. `stop()` it; if a test fails first, the object kills the group and reaps the process.
final class LaunchedProcess {
    let pid: pid_t
    let arguments: [String]
    private let stdoutReadEnd: Int32
    private let logDirectory = TemporaryDirectory()
    private var exitStatus: Int32?
    private var pending: [UInt8] = []

    init(_ arguments: [String]) throws {
        self.arguments = arguments
        var ends: [Int32] = [-1, -1]
        guard CSocketServerShims_pipe2(&ends, O_CLOEXEC) == 0 else { throw DemoHarnessError(description: "pipe failed") }
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let stderrFile = open(logDirectory.path + "/stderr", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer {
            close(devNull)
            close(stderrFile)
            close(ends[1])
        }
        do {
            pid = try spawnProcess(arguments, stdin: devNull, stdout: ends[1], stderr: stderrFile, newGroup: true)
        } catch {
            close(ends[0])
            logDirectory.cleanup()
            throw error
        }
        stdoutReadEnd = ends[0]
    }

    deinit {
        if exitStatus == nil {
            kill(-pid, SIGKILL)
            _ = waitForProcessExit(pid, timeout: .seconds(10))
        }
        close(stdoutReadEnd)
        logDirectory.cleanup()
    }

    /// What the program (and whatever it started with the same stderr) logged so far.
    var standardError: String {
        (try? String(contentsOfFile: logDirectory.path + "/stderr", encoding: .utf8)) ?? ""
    }

    /// The next stdout line, without its newline; nil when none came within `timeout` or stdout closed.
    func readLine(timeout: Duration = .seconds(30)) -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            guard ContinuousClock.now < deadline else { return nil }
            var entry = pollfd(fd: stdoutReadEnd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) >= 0 || errno == EINTR else { return nil }
            guard entry.revents != 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { read(stdoutReadEnd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            pending += buffer[..<count]
        }
    }

    /// The address of the next `listening on ADDRESS` line.
    func listeningAddress(timeout: Duration = .seconds(60)) throws -> SocketAddress {
        guard let line = readLine(timeout: timeout), line.hasPrefix("listening on ") else {
            throw DemoHarnessError(description: "no `listening on` line from \(arguments); stderr:\n\(standardError)")
        }
        return try parseDemoAddress(String(line.dropFirst("listening on ".count)))
    }

    /// Waits up to `timeout` for the program to exit; its status, or nil while it runs.
    func waitForExit(timeout: Duration) -> Int32? {
        if let exitStatus { return exitStatus }
        exitStatus = waitForProcessExit(pid, timeout: timeout)
        return exitStatus
    }

    /// Sends `signal`, waits for the exit, kills the group after `timeout`; the status, or nil when killed.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM, timeout: Duration = .seconds(30)) -> Int32? {
        if let exitStatus { return exitStatus }
        kill(pid, signal)
        if let status = waitForExit(timeout: timeout) { return status }
        kill(-pid, SIGKILL)
        exitStatus = waitForProcessExit(pid, timeout: .seconds(10))
        return nil
    }
}

/// `127.0.0.1:PORT`, `[::1]:PORT` or `unix:PATH` as the demo prints it.
func parseDemoAddress(_ text: String) throws -> SocketAddress {
    if text.hasPrefix("unix:") { return try SocketAddress(unixPath: String(text.dropFirst(5))) }
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
        throw DemoHarnessError(description: "bad address \(text)")
    }
    return try SocketAddress(host: String(text[..<colon]), port: port)
}

/// The direct children of `pid` (from every thread's `/proc/PID/task/TID/children`).
func childProcesses(of pid: pid_t) -> [pid_t] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return tasks.flatMap { task -> [pid_t] in
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap { pid_t($0) }
    }.sorted()
}

/// Runs `body` with this process as a child subreaper, so that processes orphaned meanwhile (a demo that
/// re-executed itself and whose parent exited) become its children and can be reaped by pid.
func withChildSubreaper<Result>(_ body: () throws -> Result) rethrows -> Result {
    _ = CSocketServerShims_set_child_subreaper(1)
    defer { _ = CSocketServerShims_set_child_subreaper(0) }
    return try body()
}

/// The pids a demo logged in `restarting: new process serves` lines, in order.
func restartedPIDs(in log: String) -> [pid_t] {
    log.split(separator: "\n").filter { $0.contains("restarting: new process serves") }.compactMap { line in
        guard let range = line.range(of: "socketserver.process.pid=") else { return nil }
        return pid_t(line[range.upperBound...].prefix { $0.isNumber })
    }
}

/// A client that keeps sending requests, each on a new connection, on its own threads until stopped (or for
/// at most `limit` requests or `timeLimit`), and counts what succeeded and what failed.
final class RequestLoop: Sendable {
    private let results = SanitizedMutex<(successes: Int, failures: [String])>((0, []))
    private let stopFlag = SanitizedMutex(false)
    private let threads: SanitizedMutex<[OSThread]> = SanitizedMutex([])

    /// Starts `clients` threads, each running `request` (which throws on a failure) in a loop.
    init(
        clients: Int = 2,
        limit: Int = 100_000,
        timeLimit: Duration = .seconds(120),
        _ request: @escaping @Sendable (_ client: Int, _ number: Int) throws -> Void
    ) throws {
        let deadline = ContinuousClock.now + timeLimit
        for client in 0..<clients {
            let thread = try OSThread { [self] in
                var number = 0
                while number < limit, ContinuousClock.now < deadline, !stopFlag.withLock({ $0 }) {
                    number += 1
                    do {
                        try request(client, number)
                        results.withLock { $0.successes += 1 }
                    } catch {
                        let text = "client \(client) request \(number): \(error)"
                        results.withLock { $0.failures.append(text) }
                    }
                }
            }
            threads.withLock { $0.append(thread) }
        }
    }

    var successes: Int { results.withLock { $0.successes } }
    var failures: [String] { results.withLock { $0.failures } }

    /// Waits (bounded) until `count` more requests than `from` have succeeded.
    func waitForSuccesses(_ count: Int, after from: Int, within limit: Duration = .seconds(60)) -> Bool {
        eventually(within: limit) { successes >= from + count }
    }

    /// Stops the threads and joins them.
    func stop() {
        stopFlag.withLock { $0 = true }
        for thread in threads.withLock({ $0 }) { thread.join() }
        threads.withLock { $0.removeAll() }
    }
}

/// One echo request on a new connection: a line out, the same line back.
func echoRequest(_ address: SocketAddress, _ text: String) throws {
    let client = try TestClient(connectingTo: address, timeout: .seconds(20))
    defer { client.close() }
    try client.send(text)
    let reply = try client.readLine()
    guard reply == text else { throw DemoHarnessError(description: "echo \(text.debugDescription) got \(reply.debugDescription)") }
}

/// `-E NAME=VALUE` for each sanitizer and backtrace setting of this process, for `systemd-socket-activate`,
/// which gives the program it starts only the variables it is told to: without them a sanitized demo would
/// run with LeakSanitizer's defaults and none of `.ci/lsan-suppressions.txt`.
var launcherSanitizerEnvironment: [String] {
    ["ASAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS", "SWIFT_BACKTRACE"].flatMap { name -> [String] in
        guard let value = getenv(name) else { return [] }
        return ["-E", "\(name)=\(String(cString: value))"]
    }
}
