import CSocketServerShims
import Foundation
import Glibc
import Testing

@testable import SocketServer

// Support for the integration tests of `socketserver-demo`: start the built executable as a child process,
// read its `listening on` line, drive it with real clients (curl, nc, socat, or a socket), stop and reap it.

/// The `--mode` values the demo offers; the echo services are tested in each.
let demoModes = ["sync", "threading", "forking", "pool", "event"]
/// The modes that serve several connections at once.
let demoConcurrentModes = ["threading", "forking", "pool", "event"]
/// The modes of the HTTP service.
let httpModes = demoModes
/// The HTTP modes that keep connections alive.
let httpConcurrentModes = demoConcurrentModes

/// Where the built `socketserver-demo` is: in the products directory, next to the test bundle (`swift test`
/// builds every product of the package before it runs the tests).
let demoExecutablePath: String? = {
    var candidates: [String] = []
    if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        candidates.append(executable)
    }
    candidates.append(CommandLine.arguments[0])
    candidates.append(Bundle.main.bundlePath)
    for candidate in candidates {
        var directory = URL(fileURLWithPath: candidate).deletingLastPathComponent()
        // Inside a bundle (`….xctest/Contents/MacOS/…` elsewhere), walk up to the products directory.
        for _ in 0..<4 {
            let path = directory.appendingPathComponent("socketserver-demo").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
            directory = directory.deletingLastPathComponent()
        }
    }
    return nil
}()

/// Whether `tool` is on the PATH.
func toolAvailable(_ tool: String) -> Bool {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
}

/// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34), through the C shim: Swift's Glibc lacks it.
private func spawnActionsCloseFrom(
    _ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ lowest: Int32
) -> Int32 {
    CSocketServerShims_posix_spawn_file_actions_addclosefrom_np(actions, lowest)
}

/// `pipe2`, through the C shim: Swift's Glibc declares it only under `_GNU_SOURCE`.
private func pipeWithFlags(_ ends: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32 {
    CSocketServerShims_pipe2(ends, flags)
}

/// An error of the test harness itself (spawning, timeouts), reported with what it was doing.
struct DemoHarnessError: Error, CustomStringConvertible {
    let description: String
}

/// Starts `arguments[0]` (searched on the PATH) with the given standard descriptors, in a new process group
/// when `newGroup`, with default signal handling and no descriptor but 0, 1 and 2 inherited.
func spawnProcess(
    _ arguments: [String],
    stdin: Int32,
    stdout: Int32,
    stderr: Int32,
    newGroup: Bool
) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, stdin, 0)
    posix_spawn_file_actions_adddup2(&actions, stdout, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr, 2)
    _ = spawnActionsCloseFrom(&actions, 3)

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var emptyMask = sigset_t()
    sigemptyset(&emptyMask)
    posix_spawnattr_setsigmask(&attributes, &emptyMask)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGPIPE, SIGINT, SIGTERM, SIGCHLD] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
    if newGroup {
        flags |= Int32(POSIX_SPAWN_SETPGROUP)
        posix_spawnattr_setpgroup(&attributes, 0)
    }
    posix_spawnattr_setflags(&attributes, Int16(flags))

    let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    let environment = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for pointer in argv { free(pointer) }
        for pointer in environment { free(pointer) }
    }
    var pid: pid_t = 0
    let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environment)
    guard result == 0 else {
        throw DemoHarnessError(description: "cannot start \(arguments[0]): \(String(cString: strerror(result)))")
    }
    return pid
}

/// Waits for `pid` to exit, up to `timeout`; returns its exit status (128 + signal when killed), or nil
/// when it is still running.
func waitForProcessExit(_ pid: pid_t, timeout: Duration) -> Int32? {
    let deadline = ContinuousClock.now + timeout
    while true {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid {
            let signal = status & 0x7F
            return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
        }
        if result < 0 && errno != EINTR { return -1 }
        if ContinuousClock.now >= deadline { return nil }
        usleep(5_000)
    }
}

/// A file in a fresh temporary directory, removed with it.
private func temporaryFile(in directory: TemporaryDirectory, _ name: String, contents: [UInt8] = []) throws -> Int32 {
    let path = directory.path + "/" + name
    let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw DemoHarnessError(description: "cannot create \(path)") }
    var offset = 0
    while offset < contents.count {
        let written = contents[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written > 0 else { break }
        offset += written
    }
    lseek(fd, 0, SEEK_SET)
    return fd
}

/// What a client tool printed and how it exited.
struct ToolResult {
    let status: Int32
    let stdout: [UInt8]
    let stderr: String

    var output: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs a client tool (curl, nc, socat) to completion with `input` on its stdin, killing it after `timeout`.
func runTool(_ arguments: [String], input: [UInt8] = [], timeout: Duration = .seconds(20)) throws -> ToolResult {
    let directory = TemporaryDirectory()
    defer { directory.cleanup() }
    let stdin = try temporaryFile(in: directory, "stdin", contents: input)
    defer { close(stdin) }
    let stdout = try temporaryFile(in: directory, "stdout")
    defer { close(stdout) }
    let stderr = try temporaryFile(in: directory, "stderr")
    defer { close(stderr) }
    let pid = try spawnProcess(arguments, stdin: stdin, stdout: stdout, stderr: stderr, newGroup: false)
    guard let status = waitForProcessExit(pid, timeout: timeout) else {
        kill(pid, SIGKILL)
        _ = waitForProcessExit(pid, timeout: .seconds(10))
        throw DemoHarnessError(description: "\(arguments.joined(separator: " ")) did not finish in \(timeout)")
    }
    let output = try Data(contentsOf: URL(fileURLWithPath: directory.path + "/stdout"))
    let errors = try Data(contentsOf: URL(fileURLWithPath: directory.path + "/stderr"))
    return ToolResult(status: status, stdout: Array(output), stderr: String(decoding: errors, as: UTF8.self))
}

/// A running `socketserver-demo`, started in its own process group. Call `stop()` (in a `defer`); if a test
/// fails first, the object kills the whole group (forked children included) and reaps the process.
final class DemoProcess {
    /// The process id, also the process group id.
    let pid: pid_t
    /// The first stdout line, without its newline.
    let listeningLine: String
    /// The address after `listening on `.
    let address: String
    private let stdoutReadEnd: Int32
    private let logDirectory: TemporaryDirectory
    private var exitStatus: Int32?

    /// Starts `socketserver-demo arguments…` and waits (up to `timeout`) for its first stdout line.
    init(_ arguments: [String], timeout: Duration = .seconds(30)) throws {
        guard let executable = demoExecutablePath else {
            throw DemoHarnessError(description: "socketserver-demo was not built next to the test bundle")
        }
        logDirectory = TemporaryDirectory()
        var ends: [Int32] = [-1, -1]
        guard pipeWithFlags(&ends, O_CLOEXEC) == 0 else { throw DemoHarnessError(description: "pipe failed") }
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let stderrFile = open(logDirectory.path + "/stderr", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer {
            close(devNull)
            close(stderrFile)
            close(ends[1])
        }
        do {
            pid = try spawnProcess(
                [executable] + arguments, stdin: devNull, stdout: ends[1], stderr: stderrFile, newGroup: true)
        } catch {
            close(ends[0])
            logDirectory.cleanup()
            throw error
        }
        stdoutReadEnd = ends[0]
        listeningLine = Self.readLine(from: ends[0], timeout: timeout) ?? ""
        address = listeningLine.hasPrefix("listening on ") ? String(listeningLine.dropFirst(13)) : ""
        guard !address.isEmpty else {
            let log = standardError
            kill(-pid, SIGKILL)
            exitStatus = waitForProcessExit(pid, timeout: .seconds(10))
            close(stdoutReadEnd)
            logDirectory.cleanup()
            throw DemoHarnessError(description: "no `listening on` line; got \"\(listeningLine)\"; stderr: \(log)")
        }
    }

    deinit {
        if exitStatus == nil {
            kill(-pid, SIGKILL)
            _ = waitForProcessExit(pid, timeout: .seconds(10))
        }
        close(stdoutReadEnd)
        logDirectory.cleanup()
    }

    /// The port of an IP address.
    var port: Int { Int(address.split(separator: ":").last ?? "") ?? 0 }

    /// The address as a `SocketAddress`, for socket clients.
    func socketAddress() throws -> SocketAddress {
        if address.hasPrefix("unix:") { return try SocketAddress(unixPath: String(address.dropFirst(5))) }
        guard let colon = address.lastIndex(of: ":") else { throw DemoHarnessError(description: "bad address") }
        return try SocketAddress(host: String(address[..<colon]), port: port)
    }

    /// `http://127.0.0.1:PORT` or `http://[::1]:PORT`.
    var baseURL: String { "http://\(address)" }

    /// What the server logged so far.
    var standardError: String {
        (try? String(contentsOfFile: logDirectory.path + "/stderr", encoding: .utf8)) ?? ""
    }

    /// Sends `signal` to the server process only (not its forked children).
    func send(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Waits up to `timeout` for the server to exit by itself; its exit status, or nil if still running.
    func waitForExit(timeout: Duration) -> Int32? {
        if let exitStatus { return exitStatus }
        exitStatus = waitForProcessExit(pid, timeout: timeout)
        return exitStatus
    }

    /// Sends `signal` and waits for a graceful exit; kills the group after `timeout`. The exit status, or
    /// nil when it had to be killed.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM, timeout: Duration = .seconds(20)) -> Int32? {
        if let exitStatus { return exitStatus }
        send(signal)
        if let status = waitForExit(timeout: timeout) { return status }
        kill(-pid, SIGKILL)
        exitStatus = waitForProcessExit(pid, timeout: .seconds(10))
        return nil
    }

    /// The next stdout line after the `listening on` line (the `metrics on` line, say), waiting up to
    /// `timeout`; nil when none came.
    func nextStdoutLine(timeout: Duration = .seconds(30)) -> String? {
        Self.readLine(from: stdoutReadEnd, timeout: timeout)
    }

    private static func readLine(from fd: Int32, timeout: Duration) -> String? {
        let deadline = ContinuousClock.now + timeout
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while ContinuousClock.now < deadline {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) >= 0 || errno == EINTR else { return nil }
            guard entry.revents != 0 else { continue }
            let count = read(fd, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return String(decoding: line, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return nil
    }
}

extension DemoProcess {
    /// Whether a thread of the demo, or of a process it forked, sleeps in `clock_nanosleep`: a handler is in
    /// its `--delay-ms` pause, so the request it is handling has been read. (Nothing else in the demo sleeps
    /// that way: loops wait in epoll, workers on futexes, the signal watcher in sigwait. A sanitizer
    /// runtime's background thread sleeps too, every 100 ms, but in the plain `nanosleep` system call, where
    /// glibc's `nanosleep`, which the demo's pause uses, calls `clock_nanosleep`.)
    var isPausingInAHandler: Bool {
        var pending: [pid_t] = [pid]
        var seen = Set<pid_t>()
        while let process = pending.popLast() {
            guard seen.insert(process).inserted else { continue }
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process)/task")) ?? []
            for task in tasks {
                let base = "/proc/\(process)/task/\(task)"
                if Self.pausesInAHandler(base) { return true }
                let children = (try? String(contentsOfFile: base + "/children", encoding: .utf8)) ?? ""
                pending += children.split(separator: " ").compactMap { pid_t($0) }
            }
        }
        return false
    }

    /// The system call the thread is blocked in, which tells the demo's pause (`clock_nanosleep`) from a
    /// sanitizer's background thread (`nanosleep`); where it is hidden, the kernel's wait channel, which
    /// cannot tell the two apart.
    private static func pausesInAHandler(_ task: String) -> Bool {
        if let call = try? String(contentsOfFile: task + "/syscall", encoding: .utf8),
            let number = call.split(separator: " ").first.flatMap({ Int($0) })
        {
            #if arch(x86_64)
                return number == 230
            #elseif arch(arm64)
                return number == 115
            #else
                return false
            #endif
        }
        let channel = (try? String(contentsOfFile: task + "/wchan", encoding: .utf8)) ?? ""
        return channel.contains("nanosleep")
    }

    /// Waits (bounded) until the server has logged `text` to stderr.
    func waitForLog(_ text: String, within limit: Duration = .seconds(20)) -> Bool {
        eventually(within: limit) { standardError.contains(text) }
    }
}

/// Starts the demo, runs `body` with it, and always stops it; the exit status must be 0.
func withDemo<Result>(
    _ arguments: [String],
    _ body: (DemoProcess) throws -> Result
) throws -> Result {
    let demo = try DemoProcess(arguments)
    let result: Result
    do {
        result = try body(demo)
    } catch {
        demo.stop()
        throw error
    }
    let status = demo.stop()
    #expect(status == 0, "socketserver-demo \(arguments.joined(separator: " ")) exited with \(String(describing: status)); stderr:\n\(demo.standardError)")
    return result
}

/// One HTTP response as curl `-i` or a raw socket shows it: status line, fields, body.
struct HTTPReply {
    let statusCode: Int
    let headers: [String: String]
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    /// Splits `bytes` at the first empty line; header names lowercased.
    init(_ bytes: [UInt8]) {
        let separator = Array("\r\n\r\n".utf8)
        var headEnd = bytes.count
        var bodyStart = bytes.count
        if bytes.count >= 4 {
            for index in 0...(bytes.count - 4) where Array(bytes[index..<(index + 4)]) == separator {
                headEnd = index
                bodyStart = index + 4
                break
            }
        }
        let head = String(decoding: bytes[..<headEnd], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head.first?.split(separator: " ") ?? []
        statusCode = statusParts.count > 1 ? Int(statusParts[1]) ?? 0 : 0
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        self.headers = headers
        body = Array(bytes[bodyStart...])
    }
}

/// Sends `request` on a new connection and reads until the server closes it.
func rawExchange(_ address: SocketAddress, _ request: [UInt8], timeout: Duration = .seconds(20)) throws -> [UInt8] {
    let client = try TestClient(connectingTo: address, timeout: timeout)
    defer { client.close() }
    try client.socket.sendAll(request)
    return try client.reader.readToEnd()
}

/// A directory tree for the HTTP tests, with a secret file and directory beside it (outside the root) and
/// links that point out of it.
struct HTTPFixture {
    let base: TemporaryDirectory
    var root: String { base.path + "/root" }
    var outside: String { base.path + "/outside" }
    static let secret = "TOP-SECRET-OUTSIDE-THE-ROOT"
    static let oddName = "<b>&'x\".txt"

    init() throws {
        base = TemporaryDirectory()
        let files = FileManager.default
        try files.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
        try files.createDirectory(atPath: root + "/withindex", withIntermediateDirectories: true)
        try files.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "hello\n".write(toFile: root + "/hello.txt", atomically: false, encoding: .utf8)
        try "<p>page</p>\n".write(toFile: root + "/page.html", atomically: false, encoding: .utf8)
        try "odd\n".write(toFile: root + "/" + Self.oddName, atomically: false, encoding: .utf8)
        try "spaced\n".write(toFile: root + "/with space.txt", atomically: false, encoding: .utf8)
        try "inner\n".write(toFile: root + "/sub/inner.txt", atomically: false, encoding: .utf8)
        try "<h1>index</h1>\n".write(toFile: root + "/withindex/index.html", atomically: false, encoding: .utf8)
        try Self.secret.write(toFile: outside + "/secret.txt", atomically: false, encoding: .utf8)
        try files.createSymbolicLink(atPath: root + "/escape", withDestinationPath: outside + "/secret.txt")
        try files.createSymbolicLink(atPath: root + "/outdir", withDestinationPath: outside)
        try files.createSymbolicLink(atPath: root + "/relative-escape", withDestinationPath: "../outside/secret.txt")
        try files.createSymbolicLink(atPath: root + "/inside", withDestinationPath: "hello.txt")
        let random = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
        defer { try? random.close() }
        let large = try random.read(upToCount: 1 << 20) ?? Data()
        try large.write(to: URL(fileURLWithPath: root + "/large.bin"))
    }

    /// The bytes of a file under the root.
    func contents(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + name)))
    }

    func cleanup() { base.cleanup() }
}
