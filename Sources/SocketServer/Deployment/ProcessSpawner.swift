import CSocketServerShims
import Glibc

/// Starts a program with descriptors inherited the socket-activation way (3, 4, ...; `LISTEN_FDS`,
/// `LISTEN_PID` set to the child's own pid), plus a readiness pipe, and waits for its `READY=1`.
///
/// What `ProcessRestart` and `WorkerGroup` share. Owns nothing after `spawn` returns: the caller owns the
/// child (reaps it) and the pipe's read end it is given.
struct ProcessSpawner {
    /// The program: by default this one's path (`/proc/self/exe` read as a link), so that a new build
    /// installed at that path meanwhile is what runs.
    var executable = ProcessSpawner.ownExecutable()
    /// `argv`, the program's name first.
    var arguments: [String] = CommandLine.arguments
    /// Variables set (or, with nil, removed) on top of this process's environment.
    var environment: [String: String?] = [:]
    /// A signal the child gets when the spawning thread exits (`PR_SET_PDEATHSIG`), 0 for none.
    var parentDeathSignal: Int32 = 0

    /// A started child: its pid and the read end of its readiness pipe (close-on-exec, owned by the caller).
    struct Child {
        let pid: pid_t
        let readyDescriptor: Int32
    }

    /// Starts the program with `listeners` at 3, 4, ... and the readiness pipe's write end right after them.
    /// One fork and exec; the calling thread waits only until exec succeeded.
    /// - Throws: `SocketServerError.processStartFailed` when the pipe, the fork or the exec fails.
    func spawn(listeners: [Socket], names: [String]) throws -> Child {
        var ends: [Int32] = [-1, -1]
        guard CSocketServerShims_pipe2(&ends, O_CLOEXEC) == 0 else {
            throw SocketServerError.processStartFailed("pipe: \(String(cString: strerror(errno)))")
        }
        defer { close(ends[1]) }
        let descriptors = listeners.map(\.fileDescriptor) + [ends[1]]
        guard descriptors.allSatisfy({ $0 >= 0 }) else {
            close(ends[0])
            throw SocketServerError.processStartFailed("a listener to hand on is closed")
        }
        var variables = Self.currentEnvironment()
        for name in [InheritanceEnvironment.listenPID, InheritanceEnvironment.listenFDs,
            InheritanceEnvironment.listenFDNames, InheritanceEnvironment.readyFD]
        {
            variables[name] = nil
        }
        for (name, value) in environment { variables[name] = value }
        variables[InheritanceEnvironment.listenFDs] = "\(listeners.count)"
        if !names.isEmpty { variables[InheritanceEnvironment.listenFDNames] = names.joined(separator: ":") }
        variables[InheritanceEnvironment.readyFD] = "\(InheritanceEnvironment.firstDescriptor + Int32(listeners.count))"
        // LISTEN_PID's value is written by the child, which alone knows its pid: room for any pid.
        let pidPrefix = InheritanceEnvironment.listenPID + "="
        let pidSlot = strdup(pidPrefix + String(repeating: "0", count: 20))
        var entries: [UnsafeMutablePointer<CChar>?] = variables.map { strdup("\($0.key)=\($0.value)") }
        entries.append(pidSlot)
        entries.append(nil)
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer {
            for pointer in entries { free(pointer) }
            for pointer in argv { free(pointer) }
        }
        guard let pidSlot else {
            close(ends[0])
            throw SocketServerError.processStartFailed("out of memory")
        }
        let pid = descriptors.withUnsafeBufferPointer { fds in
            CSocketServerShims_spawn_inheriting(
                executable, argv, entries, fds.baseAddress, Int32(fds.count), pidSlot + pidPrefix.utf8.count, 21,
                parentDeathSignal)
        }
        guard pid > 0 else {
            let reason = String(cString: strerror(errno))
            close(ends[0])
            throw SocketServerError.processStartFailed("\(executable): \(reason)")
        }
        return Child(pid: pid, readyDescriptor: ends[0])
    }

    /// Waits up to `timeout` for `READY=1` on a child's readiness pipe, then closes the pipe.
    /// - Returns: true on `READY=1`; false when the child closed the pipe first (it exited) or time ran out.
    static func awaitReady(_ child: Child, timeout: Duration) -> Bool {
        defer { close(child.readyDescriptor) }
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return false }
            let (seconds, attoseconds) = remaining.components
            let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            var entry = pollfd(fd: child.readyDescriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                return false
            }
            if ready == 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = buffer.withUnsafeMutableBytes { read(child.readyDescriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            received += buffer[..<count]
            if received.count > 4096 { return false }
            if String(decoding: received, as: UTF8.self).split(separator: "\n").contains("READY=1") { return true }
        }
    }

    /// The path of this process's program, as `/proc/self/exe` links to it (without the ` (deleted)` the
    /// kernel adds once the file was replaced); `/proc/self/exe` itself when the link cannot be read.
    static func ownExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = buffer.withUnsafeMutableBufferPointer { storage -> Int in
            guard let base = storage.baseAddress else { return -1 }
            return readlink("/proc/self/exe", base, storage.count - 1)
        }
        guard count > 0 else { return "/proc/self/exe" }
        var path = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
        return path
    }

    /// This process's environment as a dictionary (the first of duplicate names wins, as `getenv`).
    static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        guard var cursor = CSocketServerShims_environment() else { return result }
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                let name = String(text[..<equals])
                if result[name] == nil { result[name] = String(text[text.index(after: equals)...]) }
            }
            cursor += 1
        }
        return result
    }
}
