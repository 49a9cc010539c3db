import Glibc
import Synchronization

/// A child process started with posix_spawn in its own process group, its stdout and stderr sent to files.
/// Every live child is registered so that an interrupted harness can still end them all.
final class ChildProcess: Sendable {
    let pid: pid_t
    let stdoutPath: String
    private let exitStatus = Mutex<Int32?>(nil)

    /// Every child still running, by pid (for the SIGINT clean-up).
    static let live = Mutex<Set<pid_t>>([])

    /// Starts `arguments` (looked up in PATH) with `environment` added to the harness's own.
    init(arguments: [String], stdoutPath: String, stderrPath: String, environment: [String: String] = [:]) throws {
        self.stdoutPath = stdoutPath
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        // The harness ignores SIGPIPE; a child starts with default dispositions like from a shell.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF))

        var merged: [String: String] = [:]
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                merged[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            cursor += 1
        }
        for (key, value) in environment { merged[key] = value }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let status = posix_spawnp(&child, arguments[0], &actions, &attributes, argv, envp)
        guard status == 0 else { throw HarnessError("cannot start \(arguments[0]): \(String(cString: strerror(status)))") }
        pid = child
        _ = ChildProcess.live.withLock { $0.insert(child) }
    }

    /// The exit status if the child has ended (reaping it), or nil while it runs.
    func poll() -> Int32? {
        exitStatus.withLock { known in
            if let known { return known }
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
            let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            known = code
            _ = ChildProcess.live.withLock { $0.remove(pid) }
            return code
        }
    }

    /// Waits up to `timeout` seconds for the child to end on its own; nil if it is still running.
    func wait(timeout: Double) -> Int32? {
        let deadline = monotonicSeconds() + timeout
        while monotonicSeconds() < deadline {
            if let code = poll() { return code }
            usleep(500)
        }
        return poll()
    }

    /// Waits for the first stdout line (the "listening on ADDRESS" contract); nil if the child exits or
    /// stays silent for `timeout` seconds.
    func firstLine(timeout: Double) -> String? {
        let deadline = monotonicSeconds() + timeout
        while monotonicSeconds() < deadline {
            if let text = readText(stdoutPath), let newline = text.firstIndex(of: "\n") {
                return String(text[..<newline])
            }
            if poll() != nil { return nil }
            usleep(2000)
        }
        return nil
    }

    /// Waits until `address` (HOST:PORT) accepts a TCP connection, for a server that prints no `listening on`
    /// line; false if the child exits or `timeout` seconds pass.
    func waitUntilAccepting(_ address: String, timeout: Double) -> Bool {
        guard let endpoint = IPv4Endpoint(address) else { return false }
        let deadline = monotonicSeconds() + timeout
        while monotonicSeconds() < deadline {
            let fd = LoopbackSocket.tcp(nonBlocking: false)
            let connected = fd >= 0 && endpoint.withSocketAddress({ connect(fd, $0, $1) }) == 0
            if fd >= 0 { close(fd) }
            if connected { return true }
            if poll() != nil { return false }
            usleep(5000)
        }
        return false
    }

    /// Sends SIGTERM and measures how long the process takes to exit; after `grace` seconds it is killed.
    /// Whatever is left of its process group (forked children) is killed too. Returns the seconds to exit
    /// and the exit status (nil when it had to be killed).
    @discardableResult
    func terminate(grace: Double = 3) -> (seconds: Double, status: Int32?) {
        let started = monotonicSeconds()
        if poll() == nil { kill(pid, SIGTERM) }
        let status = wait(timeout: grace)
        let elapsed = monotonicSeconds() - started
        kill(-pid, SIGKILL)
        if status == nil {
            _ = wait(timeout: 2)
        }
        return (elapsed, status)
    }

    /// Sends SIGTERM to all of `children` at once and measures each one's time to exit (nil when it had to be
    /// killed after `grace` seconds); what is left of their process groups is killed.
    static func terminateAll(_ children: [ChildProcess], grace: Double = 3) -> [Double?] {
        let started = monotonicSeconds()
        for child in children where child.poll() == nil { kill(child.pid, SIGTERM) }
        var exited = [Double?](repeating: nil, count: children.count)
        while monotonicSeconds() - started < grace {
            for (index, child) in children.enumerated() where exited[index] == nil && child.poll() != nil {
                exited[index] = monotonicSeconds() - started
            }
            if !exited.contains(where: { $0 == nil }) { break }
            usleep(200)
        }
        for child in children {
            kill(-child.pid, SIGKILL)
            if child.poll() == nil { _ = child.wait(timeout: 2) }
        }
        return exited
    }

    /// Kills every registered child and its group (used when the harness is interrupted).
    static func killAll() {
        for pid in live.withLock({ $0 }) { kill(-pid, SIGKILL) }
    }
}

/// A harness failure with a message for the terminal.
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
