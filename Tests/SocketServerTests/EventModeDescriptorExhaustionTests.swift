import Foundation
import Glibc
import Logging
import Testing

@testable import SocketServer

/// The variable that turns `childServer` on, in the child process only.
private let childVariable = "SOCKETSERVER_EVENT_EMFILE_CHILD"
/// The child reports its port on this descriptor.
private let reportDescriptor: Int32 = 3
/// Connections the child can accept before `accept` fails with `EMFILE`.
private let childConnectionBudget = 3

@Suite("Event mode: accept backoff when out of descriptors")
struct EventModeDescriptorExhaustionTests {
    /// A child process serves with a descriptor limit that leaves room for three connections. Ten clients
    /// connect: three are served, the others wait without the child spinning on its readable listener,
    /// and they are served as soon as descriptors are free again.
    @Test func serverRecoversFromEMFILEWithoutSpinning() throws {
        let child = try ChildServer.spawn()
        defer { child.stop() }
        let address = SocketAddress.loopback(port: child.port)

        var clients: [TestClient] = []
        defer { for client in clients { client.close() } }
        for index in 0..<10 {
            let client = try TestClient(connectingTo: address)
            try client.send("client \(index)\n")
            clients.append(client)
        }
        // The first few fit in the child's descriptors and are answered; the rest wait in the backlog. Wait
        // (bounded) until one is answered and the child has hit the limit; a connection answered later than
        // that is counted as waiting, which the last step below reads all the same.
        var answered = Set<Int>()
        var log = ""
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while (answered.isEmpty || !log.contains("accept failed")) && clock.now < deadline {
            for (index, client) in clients.enumerated() where !answered.contains(index) {
                guard isReadable(client.socket) else { continue }
                #expect(try client.readLine() == "client \(index)\n")
                answered.insert(index)
            }
            log += child.takeLog()
            pause(.milliseconds(5))
        }
        let waiting = clients.enumerated().filter { !answered.contains($0.offset) }.map { ($0.offset, $0.element) }
        #expect(!answered.isEmpty)
        // The child's highest descriptor can be the one its /proc/self/fd listing used (closed right after),
        // which leaves room for one connection more than the budget.
        #expect(answered.count <= childConnectionBudget + 1)
        #expect(!waiting.isEmpty, "the descriptor limit did not bite")

        // Out of descriptors with clients queued: the child must sleep between attempts, not spin, and
        // must not log every attempt.
        #expect(log.contains("accept failed"))
        let cpuBefore = child.cpuTicks()
        pause(.seconds(1))
        let cpuUsed = child.cpuTicks() - cpuBefore
        #expect(!child.takeLog().contains("accept failed"), "a warning per retry floods the log")
        let ticksPerSecond = Int(sysconf(Int32(_SC_CLK_TCK)))
        #expect(cpuUsed < ticksPerSecond * 3 / 10, "the child used \(cpuUsed) of \(ticksPerSecond) ticks in 1 s")

        // Free descriptors by closing the served clients: every waiting client is served in turn.
        for index in answered { clients[index].close() }
        for (index, client) in waiting {
            #expect(try client.readLine() == "client \(index)\n")
            client.close()
        }
        #expect(child.isRunning)
    }

    /// The server half of the test above; runs only in the child, where `childVariable` is set.
    @Test(.enabled(if: ProcessInfo.processInfo.environment[childVariable] != nil))
    func childServer() throws {
        let server = try TCPServer(.loopback(), eventHandler: EventLineEcho.self, configuration: .init(loops: 1))
        server.logger = Logger(label: "child") { _ in DescriptorLogHandler(descriptor: reportDescriptor) }
        try eventMode(of: server).startLoops()
        let serving = try ServingThread(server, pollInterval: .milliseconds(100))
        #expect(eventually { server.isServing })
        // Use up every descriptor the limit allows, then give back exactly the budget.
        let highest =
            (try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")).compactMap { Int32($0) }.max() ?? 2
        var limit = rlimit()
        _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = rlim_t(Int(highest) + 1 + childConnectionBudget)
        #expect(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0)
        var fillers: [Int32] = []
        while true {
            let filler = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if filler < 0 { break }
            fillers.append(filler)
        }
        #expect(errno == EMFILE)
        for filler in fillers.suffix(childConnectionBudget) { close(filler) }
        let report = Array("\(server.serverAddress.port ?? 0)\n".utf8)
        _ = report.withUnsafeBytes { write(reportDescriptor, $0.baseAddress, $0.count) }
        // The report descriptor stays open: closing it would hand the server one more descriptor than planned.
        serving.join()  // until the parent kills the process
    }
}

/// The child process running `childServer`, started from this test binary.
private struct ChildServer {
    let pid: pid_t
    let port: Int
    /// The read end of the report pipe: the port line, then the child's log lines.
    let report: Int32

    static func spawn() throws -> ChildServer {
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else { throw SocketError(operation: "pipe", code: errno) }
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], reportDescriptor)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)

        let arguments = [
            "/proc/self/exe", "--testing-library", "swift-testing",
            "--filter", "EventModeDescriptorExhaustionTests/childServer",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment[childVariable] = "1"
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, "/proc/self/exe", &actions, nil, argv, envp)
        close(pipeEnds[1])
        guard result == 0 else {
            close(pipeEnds[0])
            throw SocketError(operation: "posix_spawn", code: result)
        }
        let child = ChildServer(pid: pid, port: readPort(from: pipeEnds[0]), report: pipeEnds[0])
        guard child.port > 0 else {
            child.stop()
            throw SocketError(operation: "child server start", code: ETIMEDOUT)
        }
        return child
    }

    /// Reads the port line, waiting at most 60 s (a debug build under TSan starts slowly).
    private static func readPort(from descriptor: Int32) -> Int {
        var line = [UInt8]()
        var byte: UInt8 = 0
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while clock.now < deadline {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) >= 0 || errno == EINTR else { return 0 }
            guard poller.revents != 0 else { continue }
            guard read(descriptor, &byte, 1) == 1 else { return 0 }
            if byte == UInt8(ascii: "\n") { return Int(String(decoding: line, as: UTF8.self)) ?? 0 }
            line.append(byte)
        }
        return 0
    }

    /// User plus system CPU time of the child so far, in clock ticks (fields 14 and 15 of `stat`).
    func cpuTicks() -> Int {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        // After the command name, field 3 (state) is at index 0, so utime (14) and stime (15) are at 11 and 12.
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return 0 }
        return user + system
    }

    var isRunning: Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }

    /// What the child logged since the last call (it never blocks).
    func takeLog() -> String {
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            var poller = pollfd(fd: report, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 0) > 0 else { break }
            let count = chunk.withUnsafeMutableBytes { read(report, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func stop() {
        close(report)
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}

/// Writes each log message as one line to a descriptor (the child's report pipe).
private struct DescriptorLogHandler: LogHandler {
    let descriptor: Int32
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let line = Array("\(event.level): \(event.message)\n".utf8)
        _ = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }
}
