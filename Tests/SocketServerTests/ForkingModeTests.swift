import Foundation
import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

/// Forks a process that is none of the server's business: it sleeps, then exits with status 72 (the
/// reference's `simple_subprocess`). The child only sleeps and `_exit`s, which is safe in a copy of a
/// multi-threaded process.
private func forkUnrelatedChild(exitingAfter delay: Duration) throws -> pid_t {
    let microseconds = useconds_t(delay.components.seconds * 1_000_000 + delay.components.attoseconds / 1_000_000_000_000)
    let pid = fork()
    if pid == 0 {
        usleep(microseconds)
        _exit(72)
    }
    guard pid > 0 else { throw SocketError(operation: "fork", code: errno) }
    return pid
}

/// Whether `pid`, a child of this process, has exited (is a zombie), without reaping it.
private func hasExited(_ pid: pid_t) -> Bool {
    var info = siginfo_t()
    return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info._sifields._sigchld.si_pid == pid
}

/// Sends the first line of a `HoldingHandler` conversation and returns the child's pid from the reply.
private func startHeldRequest(_ client: TestClient, line: String = "hold\n") throws -> pid_t? {
    try client.send(line)
    return pid_t(try client.readLine().dropLast())
}

@Suite(
    "Forking mode", .serialized,
    .disabled(if: ModeTest.underThreadSanitizer, ModeTest.forkingUnderSanitizerReason))
struct ForkingModeTests {
    @Test func requestsOverlap() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let clients = 8
        let server = try ForkingTCPServer(.loopback(), handler: HoldingHandler.self)
        let pids = try withServing(server) { server throws in
            try ModeTest.heldRequestsOverlap(at: server.serverAddress, count: clients)
        }
        #expect(Set(pids).count == clients && !pids.contains(getpid()), "a child per request: \(pids)")
        #expect(server.activeChildren.isEmpty)
        before.expectNothingLeft()
    }

    @Test func childrenExitZeroOrOneAfterAnError() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let exits = ChildExitLog()
        let mode = ForkingMode(onChildExit: { exits.record($0) })
        let server = try ForkingTCPServer(.loopback(), handler: HoldingHandler.self, mode: mode)
        // The failing child reports through handleError; keep that out of the test output.
        server.logger = Logger(label: "forking-test") { _ in SwiftLogNoOpLogHandler() }
        var goodPid: pid_t?
        try withServing(server) { server throws in
            let good = try TestClient(connectingTo: server.serverAddress)
            goodPid = try startHeldRequest(good)
            try good.send("bye\n")
            #expect(try good.readLine() == "bye\n")
            good.close()

            let failing = try TestClient(connectingTo: server.serverAddress)
            try failing.send("fail\n")
            #expect(try failing.readToEnd() == "", "the child's shutdownRequest ends the connection")
            failing.close()
            #expect(eventually { exits.all.count == 2 })
        }
        let recorded = exits.all
        #expect(recorded.count == 2)
        #expect(recorded.first { $0.pid == goodPid }?.termination == .exited(0))
        #expect(recorded.contains { $0.pid != goodPid && $0.termination == .exited(1) })
        before.expectNothingLeft()
    }

    @Test func anUnrelatedChildIsLeftAlone() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let unrelated = try forkUnrelatedChild(exitingAfter: .milliseconds(300))
        let server = try ForkingTCPServer(.loopback(), handler: ProcessEchoHandler.self)
        try withServing(server) { server throws in
            // Serve (and reap) while the unrelated child runs and after it has exited: requests until it is a
            // zombie, bounded in count and time, then a few more.
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(20)
            var afterExit = 0
            var requests = 0
            while afterExit < 3 && requests < 2_000 && clock.now < deadline {
                if hasExited(unrelated) { afterExit += 1 }
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("ping\n")
                #expect(try client.readLine().hasSuffix(" ping\n"))
                client.close()
                requests += 1
            }
            #expect(afterExit == 3, "the unrelated child did not exit")
            #expect(eventually { server.activeChildren.isEmpty }, "the server's own children are reaped")
            server.collectChildren(blocking: false)
        }
        #expect(!server.activeChildren.contains(unrelated))
        var status: Int32 = 0
        let result = waitpid(unrelated, &status, 0)
        #expect(result == unrelated, "the server reaped a child it did not fork")
        #expect(ChildExit(pid: unrelated, waitStatus: status).termination == .exited(72))
        before.expectNothingLeft()
    }

    @Test func childrenAreReapedWhileIdle() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let server = try ForkingTCPServer(.loopback(), handler: ProcessEchoHandler.self)
        // With pidfds the exit itself wakes the loop: a poll interval of a minute must not delay the reaping.
        // Without them the loop's tick reaps, so give it a short one.
        let pollInterval: Duration = ModeTest.pidfdsAvailable ? .seconds(60) : .milliseconds(50)
        var pids: [pid_t] = []
        try withServing(server, pollInterval: pollInterval) { server throws in
            for _ in 0..<3 {
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("once\n")
                if let pid = pid_t(try client.readLine().split(separator: " ")[0]) { pids.append(pid) }
                client.close()
            }
            // No further requests: the children must still be reaped, not left as zombies.
            #expect(eventually(within: .seconds(5)) { server.activeChildren.isEmpty })
            for pid in pids { #expect(ModeTest.processIsGone(pid), "child \(pid) is still a zombie") }
        }
        #expect(pids.count == 3)
        before.expectNothingLeft()
    }

    @Test func handleTimeoutReaps() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let server = try ForkingTCPServer(.loopback(), handler: ProcessEchoHandler.self)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        try client.send("one\n")
        try server.handleRequest()
        let pid = pid_t(try client.readLine().split(separator: " ")[0])
        #expect(try client.readToEnd() == "")
        client.close()
        #expect(server.activeChildren.count == 1, "handleRequest alone does not reap")
        server.timeout = .milliseconds(100)
        // The child has closed the connection and is about to exit: wait until it is a zombie.
        if let pid { #expect(eventually { hasExited(pid) }) }
        try server.handleRequest()
        #expect(server.activeChildren.isEmpty, "handleTimeout reaps")
        if let pid { #expect(ModeTest.processIsGone(pid)) }
        server.serverClose()
        before.expectNothingLeft()
    }

    @Test func maxChildrenIsEnforcedAtForkTime() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let mode = ForkingMode(maxChildren: 2)
        let server = try AcceptCountingServer(.loopback(), handler: HoldingHandler.self, mode: mode)
        try withServing(server) { server throws in
            let first = try TestClient(connectingTo: server.serverAddress)
            let second = try TestClient(connectingTo: server.serverAddress)
            defer {
                first.close()
                second.close()
            }
            #expect(try startHeldRequest(first) != nil)
            #expect(try startHeldRequest(second) != nil)
            // A child can answer before the parent, back from fork(), has recorded it.
            #expect(eventually { mode.activeChildren.count == 2 })

            let third = try TestClient(connectingTo: server.serverAddress)
            defer { third.close() }
            try third.send("hold\n")
            #expect(server.waitForLoopToPassTheBacklog(), "the serving loop stopped")
            #expect(server.accepted == 2, "a third child was forked past maxChildren")
            #expect(mode.activeChildren.count == 2)
            #expect(!mode.isAcceptingRequests)

            try first.send("bye\n")
            #expect(try first.readLine() == "bye\n")
            // The first child exits, is reaped, and only then is the third connection taken.
            #expect(pid_t(try third.readLine().dropLast()) != nil)
            #expect(server.accepted == 3)
            #expect(mode.activeChildren.count <= 2)
            for client in [second, third] {
                try client.send("bye\n")
                #expect(try client.readLine() == "bye\n")
            }
        }
        #expect(mode.activeChildren.isEmpty)
        before.expectNothingLeft()
    }

    @Test func serverCloseWaitsForChildrenWhenBlockOnClose() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let server = try ForkingTCPServer(.loopback(), handler: HoldingHandler.self)
        let serving = try ServingThread(server)
        let client = try TestClient(connectingTo: server.serverAddress)
        defer { client.close() }
        let pid = try startHeldRequest(client)
        server.shutdown()
        serving.join()
        let closed = TestGate()
        let childGoneAtReturn = EventFlag()
        let closer = try OSThread {
            server.serverClose()
            if let pid, ModeTest.processIsGone(pid) { childGoneAtReturn.set() }
            closed.open()
        }
        // A window only for the negative check; the ordering check below needs none.
        pause(.milliseconds(300))
        #expect(!closed.isOpened, "serverClose returned with a child alive")
        try client.send("bye\n")
        #expect(try client.readLine() == "bye\n")
        closer.join()
        #expect(childGoneAtReturn.isSet, "serverClose returned before it had reaped the child")
        #expect(server.activeChildren.isEmpty)
        client.close()
        before.expectNothingLeft()
    }

    @Test func serverCloseWithoutBlockOnCloseLeavesRunningChildren() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let server = try ForkingTCPServer(.loopback(), handler: HoldingHandler.self)
        server.blockOnClose = false
        let serving = try ServingThread(server)
        let client = try TestClient(connectingTo: server.serverAddress)
        defer { client.close() }
        let pid = try startHeldRequest(client)
        #expect(eventually { server.activeChildren.count == 1 })
        server.shutdown()
        serving.join()
        // The child holds until it gets "bye", so a serverClose that waited for it would never return.
        let returned = try returns(within: .seconds(30), unblock: { try? client.send("bye\n") }) {
            server.serverClose()
        }
        #expect(returned, "serverClose waited for a running child")
        #expect(server.activeChildren.count == 1)
        try client.send("bye\n")
        #expect(try client.readLine() == "bye\n")
        server.collectChildren(blocking: true)
        #expect(server.activeChildren.isEmpty)
        if let pid { #expect(ModeTest.processIsGone(pid)) }
        client.close()
        before.expectNothingLeft()
    }

    @Test func forkingDatagramServerHandlesOverlappingRequests() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let server = try ForkingUDPServer(.loopback(), handler: ProcessDatagramEchoHandler.self)
        try withServing(server) { server throws in
            // Everything this thread allocates while the server forks was set up beforehand (see
            // `ModeTest.warmUpForForking`): the sockets and the reply buffers exist before the first send.
            let sockets = try (0..<4).map { _ in try Socket(family: .inet, type: .datagram) }
            defer { for socket in sockets { socket.close() } }
            var replies: [[UInt8]] = []
            replies.reserveCapacity(sockets.count)
            for socket in sockets { socket.timeout = .seconds(10) }
            for (index, socket) in sockets.enumerated() {
                try socket.send(Array("d\(index)".utf8), to: server.serverAddress)
            }
            for socket in sockets { replies.append(try socket.receiveFrom(maxLength: 1024).0) }
            var pids = Set<Substring>()
            for (index, reply) in replies.enumerated() {
                let fields = String(decoding: reply, as: UTF8.self).split(separator: " ")
                #expect(fields.last == "d\(index)")
                if let pid = fields.first { pids.insert(pid) }
            }
            #expect(pids.count == 4, "each datagram gets its own child")
        }
        #expect(server.activeChildren.isEmpty)
        before.expectNothingLeft()
    }
}

/// Forking with the test process doing nothing while the server forks: the clients are `nc` processes and
/// this thread waits in `waitpid`. Safe under ThreadSanitizer, unlike the suite above.
@Suite(
    "Forking mode, clients in other processes", .serialized,
    .enabled(if: ModeTest.netcatAvailable, "needs OpenBSD netcat (make deps installs it)"))
struct ForkingWithExternalClientsTests {
    @Test func childrenServeConcurrentClientsAndReportExitStatuses() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let before = ResourceSnapshot()
        let exits = ChildExitLog()
        let mode = ForkingMode(onChildExit: { exits.record($0) })
        let server = try ForkingTCPServer(.loopback(), handler: HoldingHandler.self, mode: mode)
        server.logger = Logger(label: "forking-test") { _ in SwiftLogNoOpLogHandler() }
        let port = server.serverAddress.port ?? 0
        let status = try withServing(server) { server throws -> Int32? in
            let status = ModeTest.runShell("""
                for i in 1 2 3; do
                    printf 'hold\\nbye\\n' | nc -N -w 10 127.0.0.1 \(port) > \(directory.path)/out$i &
                done
                printf 'fail\\n' | nc -N -w 10 127.0.0.1 \(port) > \(directory.path)/fail
                wait
                """)
            #expect(eventually { exits.all.count == 4 })
            return status
        }
        #expect(status == 0)
        var pids = Set<pid_t>()
        for index in 1...3 {
            let output = (try? String(contentsOfFile: "\(directory.path)/out\(index)", encoding: .utf8)) ?? ""
            let lines = output.split(separator: "\n")
            #expect(lines.count == 2 && lines.last == "bye", "client \(index) got \(output.debugDescription)")
            if let pid = lines.first.flatMap({ pid_t($0) }) { pids.insert(pid) }
        }
        #expect(pids.count == 3 && !pids.contains(getpid()), "each client has its own child")
        let failed = (try? String(contentsOfFile: "\(directory.path)/fail", encoding: .utf8)) ?? "missing"
        #expect(failed == "", "a failing child closes the connection without a reply")
        let recorded = exits.all
        #expect(recorded.filter { pids.contains($0.pid) }.allSatisfy { $0.termination == .exited(0) })
        #expect(recorded.filter { !pids.contains($0.pid) }.map(\.termination) == [.exited(1)])
        #expect(mode.activeChildren.isEmpty)
        for pid in pids { #expect(ModeTest.processIsGone(pid)) }
        before.expectNothingLeft()
    }
}
