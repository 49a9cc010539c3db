import Foundation
import Glibc
import Synchronization
import Testing

@testable import SocketServer

@Suite("socketserver-demo contract: listening line, signals, exit codes", .serialized)
struct DemoLifecycleTests {
    @Test("the executable was built next to the tests")
    func executableBuilt() throws {
        let path = try #require(demoExecutablePath)
        #expect(FileManager.default.isExecutableFile(atPath: path))
    }

    @Test(
        "bad arguments print a clear message and exit with status 2",
        arguments: [
            ["echo", "--mode", "bogus"],
            ["echo", "--port", "70000"],
            ["echo", "--port", "zero"],
            ["echo", "--workers", "2"],
            ["echo", "--mode", "sync", "--loops", "2"],
            ["echo", "--mode", "pool", "--workers", "0"],
            ["echo", "--unix", "/tmp/x.sock", "--port", "1"],
            ["echo", "--delay-ms", "-5"],
            ["echo", "--timeout", "0"],
            ["echo", "--log-level", "loud"],
            ["echo", "--host", "not an address"],
            ["udp-echo", "--no-such-option"],
            ["http", "--directory", "/nonexistent/socketserver-demo"],
            ["http", "--mode", "event", "--workers", "2"],
            ["no-such-service"],
        ]
    )
    func badArguments(arguments: [String]) throws {
        let executable = try #require(demoExecutablePath)
        let result = try runTool([executable] + arguments)
        #expect(result.status == 2, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("Error"), "stderr: \(result.stderr)")
        #expect(result.output.isEmpty, "nothing on stdout")
    }

    @Test("--help describes every mode and the slow-handler option, and exits 0")
    func help() throws {
        let executable = try #require(demoExecutablePath)
        let result = try runTool([executable, "echo", "--help"])
        #expect(result.status == 0)
        for mode in demoModes { #expect(result.output.contains(mode), "mode \(mode) missing from --help") }
        #expect(result.output.contains("--delay-ms"))
        #expect(result.output.contains("--log-level"))
    }

    @Test("SIGTERM while lines are being handled loses none of them, then exit 0", arguments: demoModes)
    func sigtermWithRequestInFlight(mode: String) throws {
        let demo = try DemoProcess(["echo", "--mode", mode, "--port", "0", "--delay-ms", "300"])
        defer { demo.stop(SIGKILL) }
        let client = try TestClient(connectingTo: try demo.socketAddress(), timeout: .seconds(20))
        defer { client.close() }
        // A first round trip proves the connection is accepted and being handled.
        try client.send("warm-up\n")
        #expect(try client.readLine() == "warm-up\n")
        try client.send("first\nsecond\n")
        // Once the server is in its 300 ms pause on the first line, ask it to stop.
        #expect(eventually(within: .seconds(20)) { demo.isPausingInAHandler }, "the first line is being handled")
        demo.send(SIGTERM)
        #expect(try client.readLine() == "first\n")
        #expect(try client.readLine() == "second\n")
        #expect(try client.readToEnd() == "", "the server closes once the lines are answered")
        #expect(demo.waitForExit(timeout: .seconds(20)) == 0, "stderr: \(demo.standardError)")
    }

    @Test("SIGINT with an idle client connected: the connection closes and the server exits 0", arguments: demoModes)
    func sigintWithIdleClient(mode: String) throws {
        let demo = try DemoProcess(["echo", "--mode", mode, "--port", "0"])
        defer { demo.stop(SIGKILL) }
        let client = try TestClient(connectingTo: try demo.socketAddress(), timeout: .seconds(20))
        defer { client.close() }
        try client.send("before\n")
        #expect(try client.readLine() == "before\n")
        demo.send(SIGINT)
        #expect(try client.readToEnd() == "")
        #expect(demo.waitForExit(timeout: .seconds(20)) == 0, "stderr: \(demo.standardError)")
    }

    @Test("SIGTERM during a datagram's handling still sends the reply", arguments: demoModes)
    func sigtermDuringDatagram(mode: String) throws {
        let demo = try DemoProcess(["udp-echo", "--mode", mode, "--port", "0", "--delay-ms", "800"])
        defer { demo.stop(SIGKILL) }
        let socket = try Socket(family: .inet, type: .datagram)
        defer { socket.close() }
        socket.timeout = .seconds(20)
        // A first round trip proves the server is serving; then one datagram is sent and, while the
        // handler sleeps on it, the signal.
        try socket.send(Array("warm-up".utf8), to: try demo.socketAddress())
        _ = try socket.receiveFrom(maxLength: 1024)
        try socket.send(Array("in flight".utf8), to: try demo.socketAddress())
        #expect(eventually(within: .seconds(20)) { demo.isPausingInAHandler }, "the datagram is being handled")
        demo.send(SIGTERM)
        let (reply, _) = try socket.receiveFrom(maxLength: 1024)
        #expect(String(decoding: reply, as: UTF8.self) == "in flight")
        #expect(demo.waitForExit(timeout: .seconds(20)) == 0, "stderr: \(demo.standardError)")
    }

    @Test("SIGTERM during a download lets it complete", arguments: httpModes)
    func sigtermDuringDownload(mode: String) throws {
        try #require(toolAvailable("curl"), "curl is missing: run `make deps`")
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        let demo = try DemoProcess(["http", "--mode", mode, "--port", "0", "--directory", fixture.root])
        defer { demo.stop(SIGKILL) }
        let output = fixture.base.path + "/download.bin"
        // 1 MiB at 1 MiB/s: the transfer is still running when the signal arrives.
        let arguments = ["curl", "-sS", "--limit-rate", "1M", "-o", output, "\(demo.baseURL)/large.bin"]
        let curlStatus = StatusBox()
        let download = try OSThread {
            let result = try? runTool(arguments)
            curlStatus.value.withLock { $0 = result?.status }
        }
        // Signal once the first bytes have arrived, so the download is surely in flight.
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            var info = stat()
            if stat(output, &info) == 0 && info.st_size > 0 { break }
            usleep(10_000)
        }
        demo.send(SIGTERM)
        download.join()
        #expect(curlStatus.value.withLock { $0 } == 0)
        #expect(demo.waitForExit(timeout: .seconds(20)) == 0, "stderr: \(demo.standardError)")
        let received = try Data(contentsOf: URL(fileURLWithPath: output))
        #expect(Array(received) == (try fixture.contents("large.bin")))
    }

    @Test("a second signal ends the process at once, with status 1")
    func secondSignal() throws {
        // The first signal waits for a request that takes a minute; the second must not.
        let demo = try DemoProcess(["echo", "--port", "0", "--delay-ms", "60000"])
        defer { demo.stop(SIGKILL) }
        let client = try TestClient(connectingTo: try demo.socketAddress(), timeout: .seconds(20))
        defer { client.close() }
        try client.send("slow\n")
        #expect(eventually(within: .seconds(20)) { demo.isPausingInAHandler }, "the request is being handled")
        demo.send(SIGTERM)
        #expect(demo.waitForLog("shutting down"), "the first signal started the shutdown")
        demo.send(SIGINT)
        #expect(demo.waitForExit(timeout: .seconds(30)) == 1, "stderr: \(demo.standardError)")
    }

    @Test("the address is in use: a clear error and a non-zero status")
    func addressInUse() throws {
        let executable = try #require(demoExecutablePath)
        try withDemo(["echo", "--port", "0"]) { demo throws in
            let result = try runTool([executable, "echo", "--port", "\(demo.port)"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("bind"), "stderr: \(result.stderr)")
        }
    }
}

/// A result handed from a helper thread to the test.
private final class StatusBox: Sendable {
    let value = SanitizedMutex<Int32?>(nil)
}
