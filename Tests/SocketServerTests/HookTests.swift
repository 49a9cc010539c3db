import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// A TCP server that records every hook call and lets a test change each hook's behaviour.
final class RecordingTCPServer: TCPServer, @unchecked Sendable {
    let calls = CallLog()
    let rejectAll = Atomic<Bool>(false)
    let failGetRequest = Atomic<Bool>(false)
    let replaceHandler = Atomic<Bool>(false)

    override func serverBind() throws {
        calls.record("serverBind")
        try super.serverBind()
    }
    override func serverActivate() throws {
        calls.record("serverActivate")
        try super.serverActivate()
    }
    override func getRequest() throws -> (Request, SocketAddress) {
        calls.record("getRequest")
        if failGetRequest.load(ordering: .relaxed) {
            let (connection, _) = try socket.accept()
            connection.close()
            throw SocketError(operation: "accept", code: ECONNABORTED)
        }
        return try super.getRequest()
    }
    override func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool {
        calls.record("verifyRequest")
        return !rejectAll.load(ordering: .relaxed)
    }
    override func processRequest(_ request: Request, clientAddress: SocketAddress) throws {
        calls.record("processRequest")
        try super.processRequest(request, clientAddress: clientAddress)
    }
    override func finishRequest(_ request: Request, clientAddress: SocketAddress) throws {
        calls.record("finishRequest")
        if replaceHandler.load(ordering: .relaxed), case .stream(let connection) = request {
            try connection.sendAll(Array("replaced\n".utf8))
            return
        }
        try super.finishRequest(request, clientAddress: clientAddress)
    }
    override func shutdownRequest(_ request: Request) {
        calls.record("shutdownRequest")
        super.shutdownRequest(request)
    }
    override func closeRequest(_ request: Request) {
        calls.record("closeRequest")
        super.closeRequest(request)
    }
    override func handleError(_ error: any Error, clientAddress: SocketAddress) {
        calls.record("handleError")
    }
    override func handleTimeout() {
        calls.record("handleTimeout")
    }
    override func serviceActions() {
        calls.record("serviceActions")
    }
    override func serverClose() {
        calls.record("serverClose")
        super.serverClose()
    }
}

/// Records the handler's three steps in the server's call log.
final class StepRecordingHandler: StreamRequestHandler {
    var calls: CallLog? { (server as? RecordingTCPServer)?.calls }
    override func setup() throws {
        calls?.record("setup")
        try super.setup()
    }
    override func handle() throws {
        calls?.record("handle")
        let line = try rfile.readLine()
        if line == Array("fail\n".utf8) { throw SocketServerError.unexpectedRequest("asked to fail") }
        try wfile.write(line)
    }
    override func finish() throws {
        calls?.record("finish")
        try super.finish()
    }
}

@Suite("Server hooks, each overridden")
struct HookTests {
    @Test func constructionCallsBindThenActivate() throws {
        let server = try RecordingTCPServer(.loopback(), handler: StepRecordingHandler.self)
        defer { server.serverClose() }
        #expect(server.calls.all == ["serverBind", "serverActivate"])
    }

    @Test func oneRequestRunsTheHooksInPythonsOrder() throws {
        let server = try RecordingTCPServer(.loopback(), handler: StepRecordingHandler.self)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        try client.send("hi\n")
        try server.handleRequest()
        #expect(try client.readLine() == "hi\n")
        #expect(try client.readToEnd() == "", "shutdownRequest half-closes, so the client reads end of file")
        #expect(
            server.calls.all == [
                "serverBind", "serverActivate", "getRequest", "verifyRequest", "processRequest", "finishRequest",
                "setup", "handle", "finish", "shutdownRequest", "closeRequest",
            ])
    }

    @Test func verifyRequestFalseShutsTheRequestDownOnceAndMakesNoHandler() throws {
        let server = try RecordingTCPServer(.loopback(), handler: StepRecordingHandler.self)
        defer { server.serverClose() }
        server.rejectAll.store(true, ordering: .relaxed)
        let client = try TestClient(connectingTo: server.serverAddress)
        try server.handleRequest()
        #expect(server.calls.count("shutdownRequest") == 1)
        #expect(server.calls.count("setup") == 0)
        #expect(server.calls.count("processRequest") == 0)
        #expect(try client.readToEnd() == "", "the rejected connection is closed")
    }

    @Test func overriddenFinishRequestReplacesTheHandler() throws {
        let server = try RecordingTCPServer(.loopback(), handler: StepRecordingHandler.self)
        defer { server.serverClose() }
        server.replaceHandler.store(true, ordering: .relaxed)
        let client = try TestClient(connectingTo: server.serverAddress)
        try server.handleRequest()
        #expect(try client.readLine() == "replaced\n")
        #expect(server.calls.count("setup") == 0)
    }

    @Test func handlerErrorGoesToHandleErrorAndTheServerKeepsServing() throws {
        let server = try RecordingTCPServer(.loopback(), handler: StepRecordingHandler.self)
        try withServing(server) { server throws in
            let failing = try TestClient(connectingTo: server.serverAddress)
            try failing.send("fail\n")
            #expect(try failing.readToEnd() == "")
            let healthy = try TestClient(connectingTo: server.serverAddress)
            try healthy.send("still here\n")
            #expect(try healthy.readLine() == "still here\n")
            healthy.close()
        }
        #expect(server.calls.count("handleError") == 1)
        #expect(server.calls.count("finish") == 2, "finish runs even when handle throws")
        #expect(server.calls.count("shutdownRequest") == 2)
        #expect(server.calls.count("serverClose") == 1)
    }

    @Test func getRequestOSErrorHandlesNothingAndTheLoopGoesOn() throws {
        let server = try RecordingTCPServer(.loopback(), handler: StepRecordingHandler.self)
        server.failGetRequest.store(true, ordering: .relaxed)
        try withServing(server) { server throws in
            let dropped = try TestClient(connectingTo: server.serverAddress)
            #expect(try dropped.readToEnd() == "")
            #expect(server.calls.count("verifyRequest") == 0)
            server.failGetRequest.store(false, ordering: .relaxed)
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("after\n")
            #expect(try client.readLine() == "after\n")
            client.close()
        }
        #expect(server.calls.count("handleError") == 0)
    }

    @Test func handleRequestCallsHandleTimeoutWhenNothingArrives() throws {
        let server = try RecordingTCPServer(.loopback(), handler: StepRecordingHandler.self)
        defer { server.serverClose() }
        server.timeout = .milliseconds(50)
        try server.handleRequest()
        #expect(server.calls.count("handleTimeout") == 1)
        #expect(server.calls.count("getRequest") == 0)
    }

    @Test func serviceActionsRunsEveryPollIntervalWhileIdle() throws {
        let server = try RecordingTCPServer(.loopback(), handler: StepRecordingHandler.self)
        try withServing(server, pollInterval: .milliseconds(20)) { server in
            #expect(eventually { server.calls.count("serviceActions") >= 5 })
        }
    }

    @Test func serviceActionsRunsAfterEachRequest() throws {
        let server = try RecordingTCPServer(.loopback(), handler: StepRecordingHandler.self)
        try withServing(server, pollInterval: .seconds(60)) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            try client.send("x\n")
            _ = try client.readLine()
            client.close()
            #expect(eventually { server.calls.count("serviceActions") >= 1 })
        }
    }
}

/// Hooks whose override changes what the server does, not just records it.
final class AlteredHooksServer: TCPServer, @unchecked Sendable {
    let handled = CallLog()
    override func serverBind() throws {
        try socket.setOption(level: SOL_SOCKET, name: SO_KEEPALIVE, value: 1)
        try super.serverBind()
    }
    override func serverActivate() throws {
        try socket.listen(backlog: 3)
    }
    override func processRequest(_ request: Request, clientAddress: SocketAddress) throws {
        // Answers every request itself, without a handler.
        if case .stream(let connection) = request {
            try connection.sendAll(Array("processed inline\n".utf8))
        }
        handled.record("inline")
        shutdownRequest(request)
    }
}

@Suite("Hook overrides change behaviour")
struct AlteredHookTests {
    @Test func bindActivateAndProcessOverrides() throws {
        let server = try AlteredHooksServer(.loopback(), handler: StepRecordingHandler.self)
        defer { server.serverClose() }
        #expect(try server.socket.option(level: SOL_SOCKET, name: SO_KEEPALIVE) == 1)
        #expect(try listenBacklog(of: server.socket) == 3)
        let client = try TestClient(connectingTo: server.serverAddress)
        try server.handleRequest()
        #expect(try client.readLine() == "processed inline\n")
        #expect(server.handled.all == ["inline"])
    }
}
