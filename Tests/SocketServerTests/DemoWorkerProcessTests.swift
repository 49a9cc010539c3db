import Foundation
import Glibc
import Testing

@testable import SocketServer

// socketserver-demo --processes N: a master that binds, N worker processes that serve the same listener (or one
// SO_REUSEPORT listener each), a worker killed with SIGKILL replaced, everything drained on SIGTERM.

/// How many request log lines (`marker`) each pid wrote: every line of the demo carries `pid=`.
private func requestsLogged(_ log: String, marker: String) -> [pid_t: Int] {
    var counts: [pid_t: Int] = [:]
    for line in log.split(separator: "\n") where line.contains(marker) {
        guard let range = line.range(of: "pid=") else { continue }
        if let pid = pid_t(line[range.upperBound...].prefix { $0.isNumber }) { counts[pid, default: 0] += 1 }
    }
    return counts
}

/// One HTTP/1.0 GET on a new connection; throws unless the status is 200 with the file's body.
private func httpRequest(_ address: SocketAddress) throws {
    let reply = HTTPReply(try rawExchange(address, Array("GET /hello.txt HTTP/1.0\r\n\r\n".utf8)))
    guard reply.statusCode == 200, reply.text == "hello\n" else {
        throw DemoHarnessError(description: "status \(reply.statusCode), body \(reply.text.debugDescription)")
    }
}

@Suite("socketserver-demo --processes: worker processes", .serialized)
struct DemoWorkerProcessTests {
    /// Starts `arguments` with 3 workers, loads them from four clients, kills one worker with SIGKILL mid-load,
    /// and checks: several workers served, only requests in flight on the killed one failed (at most one per
    /// client), the worker was replaced and the replacement serves, SIGTERM stops everything with status 0.
    private func killOneWorker(
        _ arguments: [String], marker: String, request: @escaping @Sendable (SocketAddress, Int) throws -> Void
    ) throws {
        let workers = 3
        let clients = 4
        let demo = try DemoProcess(arguments + ["--processes", "\(workers)", "--log-level", "info"])
        defer { demo.stop(SIGKILL) }
        let address = try demo.socketAddress()
        let initial = childProcesses(of: demo.pid)
        #expect(initial.count == workers, "stderr:\n\(demo.standardError)")
        let load = try RequestLoop(clients: clients) { client, number in try request(address, number) }
        defer { load.stop() }
        #expect(load.waitForSuccesses(60, after: 0), "serving; stderr:\n\(demo.standardError)")
        // Which worker accepts is the kernel's choice: a fast one can take the first requests alone, so wait
        // (bounded) for the load to reach a second one.
        #expect(
            eventually(within: .seconds(60)) {
                requestsLogged(demo.standardError, marker: marker).keys.filter(initial.contains).count >= 2
            }, "the load reached several workers: \(requestsLogged(demo.standardError, marker: marker))")

        let victim = try #require(initial.first)
        let before = load.successes
        kill(victim, SIGKILL)
        #expect(
            eventually(within: .seconds(60)) {
                let now = childProcesses(of: demo.pid)
                return now.count == workers && !now.contains(victim)
            }, "the killed worker is replaced; stderr:\n\(demo.standardError)")
        #expect(load.waitForSuccesses(60, after: before), "serving after the replacement")
        let replacement = try #require(childProcesses(of: demo.pid).first { !initial.contains($0) })
        #expect(
            eventually(within: .seconds(60)) { requestsLogged(demo.standardError, marker: marker)[replacement] != nil },
            "the replacement serves")
        load.stop()
        #expect(load.failures.count <= clients, "failures beyond the killed worker's in-flight requests: \(load.failures)")
        #expect(demo.standardError.contains("worker died; replacing it"))
        #expect(demo.stop() == 0, "stderr:\n\(demo.standardError)")
        #expect(initial.allSatisfy { kill($0, 0) != 0 } && kill(replacement, 0) != 0, "no worker outlives the master")
    }

    @Test("echo: three workers on one listener, one killed mid-load", arguments: ["sync", "threading", "forking", "pool", "event", "async"])
    func echo(mode: String) throws {
        try killOneWorker(["echo", "--mode", mode, "--port", "0"], marker: "echo connection") { address, number in
            try echoRequest(address, "request \(number)\n")
        }
    }

    @Test(
        "http: three workers, one SO_REUSEPORT listener each, one killed mid-load",
        arguments: ["threading", "event", "async"])
    func httpReusePort(mode: String) throws {
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        try killOneWorker(["http", "--mode", mode, "--port", "0", "--directory", fixture.root, "--reuse-port"], marker: "GET /hello.txt") {
            address, _ in try httpRequest(address)
        }
    }

    @Test("http over a Unix socket: three workers, one killed mid-load")
    func httpUnix() throws {
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        try killOneWorker(["http", "--mode", "pool", "--unix", fixture.base.path + "/http.sock", "--directory", fixture.root], marker: "GET /hello.txt") {
            address, _ in try httpRequest(address)
        }
        #expect(!FileManager.default.fileExists(atPath: fixture.base.path + "/http.sock"), "the master removes its socket file")
    }

    @Test("udp-echo: three workers on one socket, one killed mid-load", arguments: ["threading", "event"])
    func udpEcho(mode: String) throws {
        try killOneWorker(["udp-echo", "--mode", mode, "--port", "0"], marker: "datagram") { address, number in
            let text = "datagram \(number)"
            let reply = try datagramRoundTrip(to: address, text)
            guard reply == text else { throw DemoHarnessError(description: "got \(reply)") }
        }
    }

    @Test("SIGTERM to the master drains every worker: a line being handled is answered, then exit 0")
    func drainOnSigterm() throws {
        let demo = try DemoProcess(["echo", "--mode", "threading", "--port", "0", "--delay-ms", "300", "--processes", "2"])
        defer { demo.stop(SIGKILL) }
        let client = try TestClient(connectingTo: try demo.socketAddress(), timeout: .seconds(20))
        defer { client.close() }
        try client.send("warm-up\n")
        #expect(try client.readLine() == "warm-up\n")
        try client.send("in flight\n")
        #expect(eventually(within: .seconds(20)) { demo.isPausingInAHandler }, "the line is being handled")
        let workers = childProcesses(of: demo.pid)
        demo.send(SIGTERM)
        #expect(try client.readLine() == "in flight\n")
        #expect(try client.readToEnd() == "", "the worker closes once the line is answered")
        #expect(demo.waitForExit(timeout: .seconds(60)) == 0, "stderr:\n\(demo.standardError)")
        #expect(workers.count == 2 && workers.allSatisfy { kill($0, 0) != 0 })
        #expect(demo.standardError.contains("all workers stopped"))
    }

    @Test("bad --processes arguments exit with status 2", arguments: [
        ["echo", "--processes", "0"], ["echo", "--reuse-port"], ["echo", "--unix", "/tmp/x.sock", "--processes", "2", "--reuse-port"],
    ])
    func badArguments(arguments: [String]) throws {
        let executable = try #require(demoExecutablePath)
        let result = try runTool([executable] + arguments)
        #expect(result.status == 2, "stderr: \(result.stderr)")
    }
}
