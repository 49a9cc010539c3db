import Glibc
import Testing

@testable import SocketServer

/// A subclass changing Python's class attributes the Swift way: by overriding them.
final class DaemonThreadingServer: ThreadingTCPServer, @unchecked Sendable {
    override var daemonThreads: Bool {
        get { true }
        set {}
    }
}

final class SmallForkingServer: ForkingTCPServer, @unchecked Sendable {
    override var maxChildren: Int {
        get { 3 }
        set {}
    }
}

@Suite("Named server classes", .serialized)
struct NamedServerTests {
    // MARK: - Threading family

    @Test func threadingTCPServerEchoes() throws {
        let before = ResourceSnapshot()
        let server = try ThreadingTCPServer(.loopback(), handler: LineEchoHandler.self)
        #expect(server.mode === server.threadingMode)
        try withServing(server) { server throws in
            for round in 0..<3 {
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("threaded \(round)\n")
                #expect(try client.readLine() == "threaded \(round)\n")
                client.close()
            }
        }
        #expect(server.fileDescriptor == -1)
        before.expectNothingLeft()
    }

    @Test func threadingUDPServerEchoes() throws {
        let before = ResourceSnapshot()
        let server = try ThreadingUDPServer(.loopback(), handler: DatagramEchoHandler.self)
        try withServing(server) { server throws in
            for round in 0..<3 {
                #expect(try datagramRoundTrip(to: server.serverAddress, "dgram \(round)") == "dgram \(round)")
            }
        }
        before.expectNothingLeft()
    }

    @Test func threadingUnixStreamServerEchoes() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let before = ResourceSnapshot()
        let server = try ThreadingUnixStreamServer(try directory.socketAddress("t.sock"), handler: LineEchoHandler.self)
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("unix threaded\n")
            #expect(try client.readLine() == "unix threaded\n")
            client.close()
        }
        before.expectNothingLeft()
    }

    @Test func threadingUnixDatagramServerEchoes() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let before = ResourceSnapshot()
        let server = try ThreadingUnixDatagramServer(
            try directory.socketAddress("td.sock"), handler: DatagramEchoHandler.self)
        try withServing(server) { server throws in
            let reply = try datagramRoundTrip(
                to: server.serverAddress, "unix dgram", bindingTo: try directory.socketAddress("c.sock"))
            #expect(reply == "unix dgram")
        }
        before.expectNothingLeft()
    }

    // MARK: - Forking family

    @Test(.disabled(if: ModeTest.underThreadSanitizer, ModeTest.forkingUnderSanitizerReason))
    func forkingTCPServerEchoesFromAChildWithoutTheListener() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let server = try ForkingTCPServer(.loopback(), handler: ProcessEchoHandler.self)
        #expect(server.mode === server.forkingMode)
        var pids: [pid_t] = []
        try withServing(server) { server throws in
            for round in 0..<3 {
                let client = try TestClient(connectingTo: server.serverAddress)
                try client.send("forked \(round)\n")
                let fields = try client.readLine().split(separator: " ", maxSplits: 2)
                #expect(fields.count == 3)
                guard fields.count == 3, let pid = pid_t(fields[0]) else { continue }
                pids.append(pid)
                #expect(pid != getpid())
                #expect(fields[1] == "-1", "the child must close its copy of the listener")
                #expect(fields[2] == "forked \(round)\n")
                // The parent released its copy without a half-close, so the child's close ends the stream.
                #expect(try client.readToEnd() == "")
                client.close()
            }
        }
        #expect(server.activeChildren.isEmpty)
        for pid in pids { #expect(ModeTest.processIsGone(pid)) }
        before.expectNothingLeft()
    }

    @Test(.disabled(if: ModeTest.underThreadSanitizer, ModeTest.forkingUnderSanitizerReason))
    func forkingUDPServerEchoesFromAChild() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let server = try ForkingUDPServer(.loopback(), handler: ProcessDatagramEchoHandler.self)
        try withServing(server) { server throws in
            for round in 0..<3 {
                let reply = try datagramRoundTrip(to: server.serverAddress, "dgram \(round)")
                let fields = reply.split(separator: " ", maxSplits: 1)
                #expect(fields.count == 2 && pid_t(fields[0]) != getpid())
                #expect(fields.last == "dgram \(round)")
            }
        }
        #expect(server.activeChildren.isEmpty)
        before.expectNothingLeft()
    }

    @Test(.disabled(if: ModeTest.underThreadSanitizer, ModeTest.forkingUnderSanitizerReason))
    func forkingUnixStreamServerEchoes() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let before = ResourceSnapshot()
        let server = try ForkingUnixStreamServer(try directory.socketAddress("f.sock"), handler: ProcessEchoHandler.self)
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("unix forked\n")
            let fields = try client.readLine().split(separator: " ", maxSplits: 2)
            #expect(fields.count == 3 && pid_t(fields[0]) != getpid())
            #expect(fields.last == "unix forked\n")
            client.close()
        }
        #expect(server.activeChildren.isEmpty)
        before.expectNothingLeft()
    }

    @Test(.disabled(if: ModeTest.underThreadSanitizer, ModeTest.forkingUnderSanitizerReason))
    func forkingUnixDatagramServerEchoes() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let before = ResourceSnapshot()
        let server = try ForkingUnixDatagramServer(
            try directory.socketAddress("fd.sock"), handler: ProcessDatagramEchoHandler.self)
        try withServing(server) { server throws in
            let reply = try datagramRoundTrip(
                to: server.serverAddress, "unix dgram", bindingTo: try directory.socketAddress("c.sock"))
            let fields = reply.split(separator: " ", maxSplits: 1)
            #expect(fields.count == 2 && pid_t(fields[0]) != getpid())
            #expect(fields.last == "unix dgram")
        }
        #expect(server.activeChildren.isEmpty)
        before.expectNothingLeft()
    }

    // MARK: - Attributes, subclassing, explicit modes

    @Test func attributesHaveTheReferenceDefaults() throws {
        let threading = try ThreadingTCPServer(.loopback(), handler: LineEchoHandler.self)
        defer { threading.serverClose() }
        #expect(threading.daemonThreads == false)
        #expect(threading.blockOnClose == true)
        #expect(threading.timeout == nil)
        #expect(threading.threadingMode.maxConcurrentRequests == nil)

        let forking = try ForkingUDPServer(.loopback(), handler: DatagramEchoHandler.self)
        defer { forking.serverClose() }
        #expect(forking.timeout == .seconds(300))
        #expect(forking.maxChildren == 40)
        #expect(forking.blockOnClose == true)
        #expect(forking.activeChildren.isEmpty)

        forking.maxChildren = 5
        forking.blockOnClose = false
        #expect(forking.forkingMode.maxChildren == 5)
        #expect(forking.forkingMode.blockOnClose == false)
        threading.daemonThreads = true
        #expect(threading.threadingMode.daemonThreads == true)

        let plain = try TCPServer(.loopback(), handler: LineEchoHandler.self)
        defer { plain.serverClose() }
        #expect(plain.mode is SynchronousMode, "the synchronous mode stays the default")
    }

    @Test func subclassOverridesReachTheMode() throws {
        let threading = try DaemonThreadingServer(.loopback(), handler: LineEchoHandler.self)
        defer { threading.serverClose() }
        #expect(threading.threadingMode.daemonThreads == true)

        let forking = try SmallForkingServer(.loopback(), handler: ProcessEchoHandler.self)
        defer { forking.serverClose() }
        #expect(forking.forkingMode.maxChildren == 3)
    }

    @Test func anyServerTakesAnExplicitMode() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let before = ResourceSnapshot()

        let tcp = try TCPServer(.loopback(), handler: LineEchoHandler.self, mode: ThreadPoolMode(workers: 2))
        try withServing(tcp) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("pooled\n")
            #expect(try client.readLine() == "pooled\n")
            client.close()
        }

        let udp = try UDPServer(.loopback(), handler: DatagramEchoHandler.self, mode: ThreadPoolMode(workers: 2))
        try withServing(udp) { server throws in
            #expect(try datagramRoundTrip(to: server.serverAddress, "pooled") == "pooled")
        }

        let unixStream = try UnixStreamServer(
            try directory.socketAddress("p.sock"), handler: LineEchoHandler.self, mode: ThreadingMode())
        try withServing(unixStream) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("threaded\n")
            #expect(try client.readLine() == "threaded\n")
            client.close()
        }

        let unixDatagram = try UnixDatagramServer(
            try directory.socketAddress("pd.sock"), handler: DatagramEchoHandler.self, mode: ThreadPoolMode(workers: 1))
        try withServing(unixDatagram) { server throws in
            let reply = try datagramRoundTrip(
                to: server.serverAddress, "pooled unix", bindingTo: try directory.socketAddress("c.sock"))
            #expect(reply == "pooled unix")
        }

        before.expectNothingLeft()
    }

    @Test(.disabled(if: ModeTest.underThreadSanitizer, ModeTest.forkingUnderSanitizerReason))
    func aPlainServerTakesAForkingMode() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let mode = ForkingMode()
        let server = try UnixStreamServer(try directory.socketAddress("fs.sock"), handler: ProcessEchoHandler.self, mode: mode)
        #expect(server.timeout == nil, "only the named forking classes default to 300 s")
        try withServing(server) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("forked\n")
            #expect(try client.readLine().hasSuffix(" forked\n"))
            client.close()
        }
        #expect(mode.activeChildren.isEmpty)
        before.expectNothingLeft()
    }
}
