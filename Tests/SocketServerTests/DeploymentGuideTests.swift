import Foundation
import Glibc
import Testing

@testable import SocketServer

// The deployment guide (README "Deployment", DocC article DeployingServers) shows the files in Deploy/; each one is
// exercised here with the real program it configures: the systemd socket and service units through
// systemd-socket-activate with the same settings (no systemd runs here), HAProxy in front of two demo
// instances, and the Kubernetes termination sequence (SIGTERM with requests in flight).

/// The repository's root: three levels above this file.
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

private func deployFile(_ name: String) throws -> String {
    try String(contentsOfFile: repositoryRoot + "/Deploy/" + name, encoding: .utf8)
}

/// The values of `key=` lines of a unit file, in order.
private func unitValues(_ unit: String, _ key: String) -> [String] {
    unit.split(separator: "\n").compactMap { line in
        line.hasPrefix(key + "=") ? String(line.dropFirst(key.count + 1)) : nil
    }
}

/// A GET through `address` on a new connection; throws unless 200 with the file's body.
private func getHello(_ address: SocketAddress) throws {
    let reply = HTTPReply(try rawExchange(address, Array("GET /hello.txt HTTP/1.0\r\n\r\n".utf8)))
    guard reply.statusCode == 200, reply.text == "hello\n" else {
        throw DemoHarnessError(description: "status \(reply.statusCode), body \(reply.text.debugDescription)")
    }
}

@Suite("The deployment guide's files, run", .serialized)
struct DeploymentGuideTests {
    @Test("the README and the DocC article show every file of Deploy/ verbatim")
    func guideShowsTheFiles() throws {
        let readme = try String(contentsOfFile: repositoryRoot + "/README.md", encoding: .utf8)
        let article = try String(
            contentsOfFile: repositoryRoot + "/Sources/SocketServer/SocketServer.docc/DeployingServers.md", encoding: .utf8)
        for name in ["systemd/socketserver-demo.socket", "systemd/socketserver-demo.service", "haproxy/haproxy.cfg",
            "kubernetes/deployment.yaml"]
        {
            let text = try deployFile(name)
            #expect(readme.contains(text), "README.md shows Deploy/\(name) as it is")
            #expect(article.contains(text), "DeployingServers.md shows Deploy/\(name) as it is")
        }
    }

    @Test(
        "the socket and service units, through systemd-socket-activate: socket inherited, READY=1, served, STOPPING=1, exit 0",
        .enabled(if: toolAvailable("systemd-socket-activate")))
    func systemdUnits() throws {
        let socketUnit = try deployFile("systemd/socketserver-demo.socket")
        let serviceUnit = try deployFile("systemd/socketserver-demo.service")
        let listen = try #require(unitValues(socketUnit, "ListenStream").first)
        let name = try #require(unitValues(socketUnit, "FileDescriptorName").first)
        #expect(unitValues(serviceUnit, "Type") == ["notify"])
        var command = try #require(unitValues(serviceUnit, "ExecStart").first).split(separator: " ").map(String.init)
        #expect(command.first == "/usr/local/bin/socketserver-demo")
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        command[0] = try #require(demoExecutablePath)
        if let directory = command.firstIndex(of: "--directory") { command[directory + 1] = fixture.root }
        // Same address family and host as the unit; a free port instead of 8000.
        let host = String(listen[..<(try #require(listen.lastIndex(of: ":")))])
        let port = try freeLoopbackPort()

        let notifyPath = fixture.base.path + "/notify"
        let notifications = try Socket(family: .unix, type: .datagram)
        defer { notifications.close() }
        notifications.timeout = .seconds(30)
        try notifications.bind(to: try SocketAddress(unixPath: notifyPath))
        let launcher = try LaunchedProcess(
            ["systemd-socket-activate", "-l", "\(host):\(port)", "--fdname=\(name)", "-E", "NOTIFY_SOCKET=\(notifyPath)"] + launcherSanitizerEnvironment + ["--"]
                + command)
        defer { launcher.stop(SIGKILL) }
        #expect(eventually(within: .seconds(30)) { launcher.standardError.contains("as 3.") }, "\(launcher.standardError)")
        let address = try SocketAddress(host: host, port: port)
        try getHello(address)  // the first connection starts the service
        #expect(String(decoding: try notifications.receiveFrom(maxLength: 256).0, as: UTF8.self) == "READY=1")
        for _ in 0..<5 { try getHello(address) }
        kill(launcher.pid, SIGTERM)  // KillSignal=SIGTERM
        #expect(String(decoding: try notifications.receiveFrom(maxLength: 256).0, as: UTF8.self) == "STOPPING=1")
        #expect(launcher.waitForExit(timeout: .seconds(30)) == 0, "stderr: \(launcher.standardError)")
    }

    @Test(
        "HAProxy in front of two instances: requests spread, and one instance drained by SIGTERM mid-load costs no request",
        .enabled(if: toolAvailable("haproxy")))
    func haproxyInFront() throws {
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        let instances = try (0..<2).map { _ in
            try DemoProcess(["http", "--mode", "event", "--port", "0", "--directory", fixture.root])
        }
        defer { for instance in instances { instance.stop(SIGKILL) } }
        let frontendPort = try freeLoopbackPort()
        var configuration = try deployFile("haproxy/haproxy.cfg")
        configuration = configuration.replacingOccurrences(of: "127.0.0.1:8000", with: "127.0.0.1:\(frontendPort)")
        configuration = configuration.replacingOccurrences(of: "127.0.0.1:8001", with: instances[0].address)
        configuration = configuration.replacingOccurrences(of: "127.0.0.1:8002", with: instances[1].address)
        let path = fixture.base.path + "/haproxy.cfg"
        try configuration.write(toFile: path, atomically: true, encoding: .utf8)
        let haproxy = try LaunchedProcess(["haproxy", "-db", "-f", path])
        defer { haproxy.stop(SIGKILL) }
        let frontend = try SocketAddress(host: "127.0.0.1", port: frontendPort)
        #expect(eventually(within: .seconds(30)) { (try? getHello(frontend)) != nil }, "haproxy: \(haproxy.standardError)")

        let load = try RequestLoop(clients: 3) { _, _ in try getHello(frontend) }
        defer { load.stop() }
        #expect(load.waitForSuccesses(60, after: 0))
        for instance in instances {
            #expect(instance.standardError.contains("GET /hello.txt"), "both instances served")
        }
        let before = load.successes
        #expect(instances[0].stop() == 0, "the drained instance exits 0")
        #expect(load.waitForSuccesses(60, after: before), "the other instance takes the load")
        load.stop()
        #expect(load.failures.isEmpty, "failed requests: \(load.failures.prefix(5)); haproxy: \(haproxy.standardError)")
        #expect(haproxy.stop(SIGTERM) != nil)
    }

    @Test("Kubernetes termination: SIGTERM with a download in flight; it completes, exit 0 within the grace period")
    func kubernetesTermination() throws {
        let manifest = try deployFile("kubernetes/deployment.yaml")
        let graceLine = try #require(manifest.split(separator: "\n").first { $0.contains("terminationGracePeriodSeconds:") })
        let grace = try #require(Int64(graceLine.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? ""))
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        // 16 MiB at 8 MiB/s: about 2 s, in flight when SIGTERM arrives.
        let size = 16 << 20
        try Data(repeating: 0x5A, count: size).write(to: URL(fileURLWithPath: fixture.root + "/big.bin"))
        let demo = try DemoProcess(["http", "--mode", "threading", "--port", "0", "--processes", "2", "--directory", fixture.root])
        defer { demo.stop(SIGKILL) }
        let output = fixture.base.path + "/download"
        func downloaded() -> Int { (try? FileManager.default.attributesOfItem(atPath: output))?[.size] as? Int ?? 0 }
        let curl = try LaunchedProcess(
            ["curl", "-sS", "--limit-rate", "8M", "-o", output, "-w", "%{http_code}\n", demo.baseURL + "/big.bin"])
        defer { curl.stop(SIGKILL) }
        #expect(eventually(within: .seconds(30)) { downloaded() > 0 })
        demo.send(SIGTERM)
        #expect(downloaded() < size, "the download is still in flight at SIGTERM")
        #expect(curl.readLine(timeout: .seconds(60)) == "200")
        #expect(curl.waitForExit(timeout: .seconds(60)) == 0, "curl: \(curl.standardError)")
        #expect(downloaded() == size, "the whole file arrived")
        // Kubernetes sends SIGKILL after the grace period: the drain must be over by then.
        #expect(demo.waitForExit(timeout: .seconds(grace)) == 0, "exit 0 within the grace period; \(demo.standardError)")
        #expect(throws: (any Error).self, "nothing listens after the exit") { try getHello(try demo.socketAddress()) }
    }
}
