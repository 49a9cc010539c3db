import Foundation
import Glibc
import Testing

@testable import SocketServer

// socketserver-demo started by the real launcher, systemd-socket-activate (Debian's systemd package): it binds,
// waits for the first client, then executes the demo with the socket as descriptor 3 and LISTEN_* set.

/// `systemd-socket-activate` arguments for the demo, on a free port (the launcher cannot take port 0; a
/// port taken meanwhile by someone else makes the launcher fail, and the test tries another).
private func activated(
    _ listen: String, extra: [String] = [], demo arguments: [String]
) throws -> [String] {
    let executable = try #require(demoExecutablePath)
    return ["systemd-socket-activate", "-l", listen] + launcherSanitizerEnvironment + extra + ["--", executable] + arguments
}

/// Waits for the launcher's `Listening on ... as 3.` line on stderr.
private func waitUntilListening(_ launcher: LaunchedProcess) -> Bool {
    eventually(within: .seconds(30)) { launcher.standardError.contains("as 3.") }
}

@Suite("socketserver-demo under systemd-socket-activate", .serialized, .enabled(if: toolAvailable("systemd-socket-activate")))
struct DemoSocketActivationTests {
    @Test("echo over TCP: the first client starts the demo, which serves the inherited socket", arguments: ["sync", "threading", "event", "async"])
    func echoTCP(mode: String) throws {
        let port = try freeLoopbackPort()
        let launcher = try LaunchedProcess(
            try activated("127.0.0.1:\(port)", extra: ["--fdname=echo"], demo: ["echo", "--mode", mode, "--log-level", "info"]))
        defer { launcher.stop(SIGKILL) }
        #expect(waitUntilListening(launcher), "stderr: \(launcher.standardError)")
        let address = try SocketAddress(host: "127.0.0.1", port: port)
        // This connection waits in the launcher's accept queue until the demo adopts the socket.
        try echoRequest(address, "first\n")
        let announced = try launcher.listeningAddress()
        #expect(announced == address, "the demo serves the inherited address")
        for number in 0..<5 { try echoRequest(address, "again \(number)\n") }
        #expect(launcher.standardError.contains("serving"))
        #expect(launcher.stop() == 0, "stderr: \(launcher.standardError)")
    }

    @Test("echo over a Unix socket, and udp-echo with --datagram")
    func unixAndDatagram() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path + "/echo.sock"
        let unixLauncher = try LaunchedProcess(try activated(path, demo: ["echo", "--mode", "event"]))
        defer { unixLauncher.stop(SIGKILL) }
        #expect(waitUntilListening(unixLauncher), "stderr: \(unixLauncher.standardError)")
        let unixAddress = try SocketAddress(unixPath: path)
        try echoRequest(unixAddress, "over unix\n")
        #expect(try unixLauncher.listeningAddress() == unixAddress)
        try echoRequest(unixAddress, "twice\n")
        #expect(unixLauncher.stop() == 0, "stderr: \(unixLauncher.standardError)")

        let port = try freeLoopbackPort(.datagram)
        let udpLauncher = try LaunchedProcess(
            try activated("127.0.0.1:\(port)", extra: ["--datagram"], demo: ["udp-echo", "--mode", "threading"]))
        defer { udpLauncher.stop(SIGKILL) }
        #expect(waitUntilListening(udpLauncher), "stderr: \(udpLauncher.standardError)")
        let udpAddress = try SocketAddress(host: "127.0.0.1", port: port)
        // The first datagram starts the demo and waits in the socket's queue for it.
        #expect(try datagramRoundTrip(to: udpAddress, "datagram one") == "datagram one")
        #expect(try udpLauncher.listeningAddress() == udpAddress)
        #expect(try datagramRoundTrip(to: udpAddress, "datagram two") == "datagram two")
        #expect(udpLauncher.stop() == 0, "stderr: \(udpLauncher.standardError)")
    }

    @Test("READY=1 once serving and STOPPING=1 on SIGTERM go to NOTIFY_SOCKET")
    func notifySocket() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let notifyPath = directory.path + "/notify"
        let receiver = try Socket(family: .unix, type: .datagram)
        defer { receiver.close() }
        receiver.timeout = .seconds(30)
        try receiver.bind(to: try SocketAddress(unixPath: notifyPath))
        let port = try freeLoopbackPort()
        let launcher = try LaunchedProcess(
            try activated("127.0.0.1:\(port)", extra: ["-E", "NOTIFY_SOCKET=\(notifyPath)"], demo: ["http", "--mode", "pool"]))
        defer { launcher.stop(SIGKILL) }
        #expect(waitUntilListening(launcher), "stderr: \(launcher.standardError)")
        let result = try runTool(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/"])
        #expect(result.output == "200")
        #expect(String(decoding: try receiver.receiveFrom(maxLength: 256).0, as: UTF8.self) == "READY=1")
        kill(launcher.pid, SIGTERM)
        #expect(String(decoding: try receiver.receiveFrom(maxLength: 256).0, as: UTF8.self) == "STOPPING=1")
        #expect(launcher.waitForExit(timeout: .seconds(30)) == 0, "stderr: \(launcher.standardError)")
    }

    @Test("a descriptor of the wrong kind is refused with a clear error and status 1")
    func wrongKind() throws {
        let port = try freeLoopbackPort(.datagram)
        // A datagram socket for the stream echo service.
        let launcher = try LaunchedProcess(try activated("127.0.0.1:\(port)", extra: ["--datagram"], demo: ["echo"]))
        defer { launcher.stop(SIGKILL) }
        #expect(waitUntilListening(launcher), "stderr: \(launcher.standardError)")
        let poke = try Socket(family: .inet, type: .datagram)
        defer { poke.close() }
        try poke.send(Array("x".utf8), to: try SocketAddress(host: "127.0.0.1", port: port))
        #expect(launcher.waitForExit(timeout: .seconds(30)) == 1)
        #expect(launcher.standardError.contains("not a stream socket"), "stderr: \(launcher.standardError)")
    }
}
