import Foundation
import Glibc
import Testing

@testable import SocketServer

// Zero-downtime restart: SIGUSR2 makes the demo re-execute itself with its listener inherited; the new process
// serves, the old one stops accepting and drains. A client keeps connecting throughout two restarts.

@Suite("socketserver-demo restarts on SIGUSR2 without refusing anybody", .serialized)
struct DemoRestartTests {
    /// Two restarts under a steady stream of new connections: no refusal, no failed request, each old process
    /// exits 0 and the last one serves on until SIGTERM.
    private func restartTwice(_ arguments: [String], request: @escaping @Sendable (SocketAddress, String) throws -> Void)
        throws
    {
        try withChildSubreaper {
            let first = try DemoProcess(arguments)
            defer { first.stop(SIGKILL) }
            let address = try first.socketAddress()
            let load = try RequestLoop(clients: 2) { client, number in
                try request(address, "client \(client) request \(number)\n")
            }
            defer { load.stop() }
            #expect(load.waitForSuccesses(20, after: 0), "serving before the restarts")

            var current = first.pid
            var replaced: [pid_t] = []
            for restart in 1...2 {
                let before = load.successes
                kill(current, SIGUSR2)
                let newPID = try #require(
                    eventually(within: .seconds(60)) { restartedPIDs(in: first.standardError).count == restart }
                        ? restartedPIDs(in: first.standardError).last : nil,
                    "restart \(restart) reported; stderr:\n\(first.standardError)")
                #expect(newPID != current)
                // The old process drains and exits 0 (the first is this test's child; the second became one when
                // its parent exited, as this process is a subreaper).
                let status = current == first.pid ? first.waitForExit(timeout: .seconds(60)) : waitForProcessExit(current, timeout: .seconds(60))
                #expect(status == 0, "old process \(current) exit status; stderr:\n\(first.standardError)")
                replaced.append(current)
                current = newPID
                #expect(load.waitForSuccesses(20, after: before), "the new process serves")
            }
            load.stop()
            #expect(load.failures.isEmpty, "failed requests: \(load.failures.prefix(5))")
            #expect(load.successes >= 60)
            kill(current, SIGTERM)
            #expect(waitForProcessExit(current, timeout: .seconds(60)) == 0, "stderr:\n\(first.standardError)")
            #expect(first.standardError.contains("restarted: draining"))
        }
    }

    @Test("echo over TCP, two restarts", arguments: ["sync", "threading", "forking", "pool", "event", "async"])
    func echoTCP(mode: String) throws {
        try restartTwice(["echo", "--mode", mode, "--port", "0"]) { address, line in
            try echoRequest(address, line)
        }
    }

    @Test("echo over a Unix socket, two restarts: the socket file stays served")
    func echoUnix() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        try restartTwice(["echo", "--mode", "event", "--unix", directory.path + "/restart.sock"]) { address, line in
            try echoRequest(address, line)
        }
    }

    @Test("http with curl, two restarts")
    func http() throws {
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        try restartTwice(["http", "--mode", "event", "--port", "0", "--directory", fixture.root, "--log-level", "notice"]) {
            address, _ in
            let result = try runTool(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://\(address)/hello.txt"])
            guard result.status == 0, result.output == "200" else {
                throw DemoHarnessError(description: "curl \(result.status) \(result.output) \(result.stderr)")
            }
        }
    }

    @Test("a restart whose new process cannot serve leaves the old one serving")
    func failedRestart() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        // The new process gets the same arguments; a --directory that is gone by then makes it exit with 2.
        let root = directory.path + "/root"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let demo = try DemoProcess(["http", "--mode", "threading", "--port", "0", "--directory", root])
        defer { demo.stop(SIGKILL) }
        try FileManager.default.removeItem(atPath: root)
        demo.send(SIGUSR2)
        #expect(demo.waitForLog("restart failed; serving on"), "stderr:\n\(demo.standardError)")
        let result = try runTool(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", demo.baseURL + "/"])
        #expect(result.output == "404", "the old process still answers (its directory is gone)")
        #expect(demo.stop() == 0)
    }
}
