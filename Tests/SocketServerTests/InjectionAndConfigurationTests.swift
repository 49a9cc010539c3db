import Dispatch
import Glibc
import Logging
import Synchronization
import Testing

@testable import SocketServer

/// A thread-safe store the handlers of these tests share: what a real service would inject (a cache, a pool).
final class SharedTally: Sendable {
    private let counts = SanitizedMutex<[String: Int]>([:])

    /// Counts one more `key` and returns the new count.
    func add(_ key: String) -> Int {
        counts.withLock { counts in
            let next = (counts[key] ?? 0) + 1
            counts[key] = next
            return next
        }
    }

    func count(_ key: String) -> Int { counts.withLock { $0[key] ?? 0 } }
}

/// Replies `"<count> <line>"` for each line, counting lines in the injected tally.
final class TallyHandler: DependentStreamRequestHandler<SharedTally> {
    override func handle() throws {
        while true {
            let line = try rfile.readLineString()
            if line.isEmpty { return }
            try wfile.write("\(dependencies.add(line)) \(line)")
        }
    }
}

/// The same with a plain initialiser, for a factory closure.
final class FactoryTallyHandler: StreamRequestHandler {
    let tally: SharedTally

    init(_ context: HandlerContext, tally: SharedTally) {
        self.tally = tally
        super.init(request: context.request, clientAddress: context.clientAddress, server: context.server)
    }

    required init(request: Request, clientAddress: SocketAddress, server: BaseServer) {
        self.tally = SharedTally()
        super.init(request: request, clientAddress: clientAddress, server: server)
    }

    override func handle() throws {
        let line = try rfile.readLineString()
        try wfile.write("\(tally.add(line)) \(line)")
    }
}

/// Replies `"<count> <payload>"` to each datagram.
final class TallyDatagramHandler: DependentDatagramRequestHandler<SharedTally> {
    override func handle() throws {
        let text = String(decoding: packet, as: UTF8.self)
        try wfile.write("\(dependencies.add(text)) \(text)")
    }
}

/// The event-mode counterpart.
final class TallyEventHandler: DependentEventStreamHandler<SharedTally> {
    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        while let line = input.readLine() {
            let text = String(decoding: line, as: UTF8.self)
            connection.write("\(dependencies.add(text)) \(text)")
        }
    }
}

/// The event-mode datagram counterpart.
final class TallyEventDatagramHandler: DependentEventDatagramHandler<SharedTally> {
    override func datagramReceived(_ datagram: EventDatagram) throws {
        let text = String(decoding: datagram.packet, as: UTF8.self)
        _ = try datagram.reply(Array("\(dependencies.add(text)) \(text)".utf8))
    }
}

private func roundTrips(_ line: String, count: Int, to address: SocketAddress) throws -> [String] {
    try (0..<count).map { _ in
        let client = try TestClient(connectingTo: address)
        defer { client.close() }
        try client.send(line)
        return try client.readLine()
    }
}

@Suite("Handler factories and injected dependencies", .serialized)
struct HandlerInjectionTests {
    @Test("a Dependent handler class gets the injected value in sync, threading and pool mode")
    func dependentHandlerInBlockingModes() throws {
        let tally = SharedTally()
        let modes: [any ConcurrencyMode] = [SynchronousMode(), ThreadingMode(), ThreadPoolMode(workers: 2)]
        for mode in modes {
            let server = try TCPServer(.loopback(), handler: TallyHandler.self, dependencies: tally, mode: mode)
            #expect(server.requestHandlerType == BaseRequestHandler.self, "made by a factory")
            try withServing(server) { server in
                _ = try roundTrips("a\n", count: 2, to: server.serverAddress)
            }
        }
        #expect(tally.count("a\n") == 6, "one store shared by every server and request")
    }

    @Test("a factory closure builds each handler with what it captured")
    func factoryClosure() throws {
        let tally = SharedTally()
        let server = try TCPServer(.loopback(), mode: ThreadPoolMode(workers: 2)) { context in
            FactoryTallyHandler(context, tally: tally)
        }
        try withServing(server) { server in
            let replies = try roundTrips("b\n", count: 3, to: server.serverAddress)
            #expect(replies == ["1 b\n", "2 b\n", "3 b\n"])
        }
    }

    @Test("an error thrown by a factory goes to handleError and costs only that request")
    func throwingFactory() throws {
        struct Refused: Error {}
        let (logger, store) = RecordingLogHandler.makeLogger()
        let calls = Atomic(0)
        let server = try TCPServer(.loopback(), logger: logger) { context in
            if calls.add(1, ordering: .sequentiallyConsistent).newValue == 1 { throw Refused() }
            return LineEchoHandler(request: context.request, clientAddress: context.clientAddress, server: context.server)
        }
        try withServing(server) { server in
            let refused = try TestClient(connectingTo: server.serverAddress)
            #expect(try refused.readToEnd() == "")
            refused.close()
            let replies = try roundTrips("c\n", count: 1, to: server.serverAddress)
            #expect(replies == ["c\n"])
        }
        #expect(store.all.contains { $0.0 == .error && "\($0.2["socketserver.error"] ?? "")".contains("Refused") })
    }

    @Test("factories and dependencies work for UDP, in every datagram mode and in event mode")
    func datagramInjection() throws {
        let tally = SharedTally()
        let modes: [any ConcurrencyMode] = [SynchronousMode(), ThreadingMode(), ThreadPoolMode(workers: 2)]
        for mode in modes {
            let server = try UDPServer(.loopback(), handler: TallyDatagramHandler.self, dependencies: tally, mode: mode)
            try withServing(server) { server in
                _ = try datagramRoundTrip(to: server.serverAddress, "d")
            }
        }
        let evented = try UDPServer(.loopback(), eventHandler: TallyEventDatagramHandler(dependencies: tally))
        try withServing(evented) { server in
            let replies = try datagramRoundTrip(to: server.serverAddress, "d")
            #expect(replies == "4 d")
        }
    }

    @Test("event mode: a Dependent event handler and a makeEventHandler factory")
    func eventInjection() throws {
        let tally = SharedTally()
        let dependent = try TCPServer(
            .loopback(), eventHandler: TallyEventHandler.self, dependencies: tally, configuration: .init(loops: 2))
        try withServing(dependent) { server in
            _ = try roundTrips("e\n", count: 2, to: server.serverAddress)
        }
        let loops = SanitizedMutex<Set<Int>>([])
        let factory = try TCPServer(.loopback(), configuration: .init(loops: 2)) { context in
            loops.withLock { _ = $0.insert(context.loopIndex) }
            return TallyEventHandler(dependencies: tally)
        }
        try withServing(factory) { server in
            let replies = try roundTrips("e\n", count: 4, to: server.serverAddress)
            #expect(replies.last == "6 e\n")
        }
        #expect(loops.withLock { $0 } == [0, 1], "the factory runs for connections of every loop")
    }

    @Test("named classes take a factory, a configuration and a logger")
    func namedClasses() throws {
        let tally = SharedTally()
        let (logger, _) = RecordingLogHandler.makeLogger()
        let threading = try ThreadingTCPServer(
            .loopback(), configuration: ServerConfiguration(requestQueueSize: 16), logger: logger
        ) { context in
            FactoryTallyHandler(context, tally: tally)
        }
        #expect(threading.requestQueueSize == 16)
        try withServing(threading) { server in
            let replies = try roundTrips("f\n", count: 1, to: server.serverAddress)
            #expect(replies == ["1 f\n"])
        }
        let forking = try ForkingTCPServer(.loopback(), handler: LineEchoHandler.self, logger: logger)
        #expect(forking.timeout == .seconds(300), "the reference's forking timeout stays the default")
        forking.serverClose()
        let configured = try ForkingUDPServer(
            .loopback(), handler: DatagramEchoHandler.self, configuration: ServerConfiguration(timeout: .seconds(2)))
        #expect(configured.timeout == .seconds(2))
        configured.serverClose()
    }

    @Test("a handler that needs dependencies is refused by the handler-class initialiser")
    func dependentHandlerWithoutDependencies() throws {
        let before = ResourceSnapshot()
        #expect(throws: SocketServerError.self) { _ = try TCPServer(.loopback(), handler: TallyHandler.self) }
        #expect(throws: SocketServerError.self) { _ = try ThreadingTCPServer(.loopback(), handler: TallyHandler.self) }
        #expect(throws: SocketServerError.self) {
            _ = try TCPServer(.loopback(), mode: SynchronousMode(), makeHandler: nil)
        }
        before.expectNothingLeft()
    }
}

/// Reuses addresses by overriding the attribute, the Python way.
final class AttributeReusingServer: TCPServer, @unchecked Sendable {
    override var allowReuseAddress: Bool {
        get { true }
        set {}
    }
}

@Suite("ServerConfiguration")
struct ServerConfigurationTests {
    @Test("the configuration sets the Python-named attributes, and they read back through it")
    func configurationAndAttributesAgree() throws {
        let configuration = ServerConfiguration(
            allowReuseAddress: true, allowReusePort: true, requestQueueSize: 7, dualStack: false,
            timeout: .seconds(3))
        let server = try TCPServer(.loopback(), handler: LineEchoHandler.self, configuration: configuration)
        defer { server.serverClose() }
        #expect(server.allowReuseAddress && server.allowReusePort && server.requestQueueSize == 7)
        #expect(server.timeout == .seconds(3))
        #expect(try server.socket.option(level: SOL_SOCKET, name: SO_REUSEADDR) != 0, "applied at bind")
        #expect(server.configuration == configuration)
        server.requestQueueSize = 9
        #expect(server.configuration.requestQueueSize == 9)

        let udp = try UDPServer(
            .loopback(), handler: DatagramEchoHandler.self, configuration: ServerConfiguration(maxPacketSize: 100))
        defer { udp.serverClose() }
        #expect(udp.maxPacketSize == 100)
        #expect(udp.configuration.maxPacketSize == 100)
    }

    @Test("a subclass's override shows through the configuration")
    func overridesShow() throws {
        let server = try AttributeReusingServer(.loopback(), handler: LineEchoHandler.self)
        defer { server.serverClose() }
        #expect(server.configuration.allowReuseAddress)
    }

    @Test(
        "out-of-range values are refused at creation with a clear error, leaking nothing",
        arguments: [
            ServerConfiguration(requestQueueSize: -1),
            ServerConfiguration(requestQueueSize: Int(Int32.max) + 1),
            ServerConfiguration(timeout: .zero),
            ServerConfiguration(timeout: .seconds(-1)),
            ServerConfiguration(maxPacketSize: 0),
            ServerConfiguration(maxPacketSize: Int.max),
        ]
    )
    func invalidValues(configuration: ServerConfiguration) throws {
        let before = ResourceSnapshot()
        #expect {
            _ = try TCPServer(.loopback(), handler: LineEchoHandler.self, configuration: configuration)
        } throws: { error in
            guard case .invalidConfiguration(let detail) = error as? SocketServerError else { return false }
            return !detail.isEmpty
        }
        before.expectNothingLeft()
    }
}

/// Throws whatever error the test put in `next`.
final class ErrorRaisingHandler: StreamRequestHandler {
    nonisolated(unsafe) static var next: any Error = SocketError(operation: "recv", code: ECONNRESET)
    override func handle() throws { throw Self.next }
}

@Suite("handleError levels, as swift-log asks of libraries", .serialized)
struct HandleErrorLevelTests {
    struct ApplicationFailure: Error {}

    @Test(
        "what the client did is logged at debug or info, the server's own faults at error",
        arguments: [
            (SocketError(operation: "recv", code: ECONNRESET) as any Error, Logger.Level.debug),
            (SocketError(operation: "send", code: EPIPE), .debug),
            (SocketError(operation: "recv", code: ETIMEDOUT), .info),
            (SocketServerError.lineTooLong(limit: 10), .info),
            (EventModeError.idleTimeout, .info),
            (EventModeError.inputLimitExceeded(limit: 1), .info),
            (ApplicationFailure(), .error),
            (SocketError(operation: "open", code: EMFILE), .error),
        ] as [(any Error, Logger.Level)]
    )
    func levels(error: any Error, level: Logger.Level) throws {
        let (logger, store) = RecordingLogHandler.makeLogger()
        ErrorRaisingHandler.next = error
        let server = try TCPServer(.loopback(), handler: ErrorRaisingHandler.self, logger: logger)
        defer { server.serverClose() }
        let client = try TestClient(connectingTo: server.serverAddress)
        defer { client.close() }
        let clientAddress = try client.socket.localAddress
        try server.handleRequest()
        let entries = store.all
        #expect(entries.count == 1)
        #expect(entries.first?.0 == level)
        #expect(entries.first?.2["socketserver.client.address"]?.description == clientAddress.description)
        #expect(entries.first?.2["socketserver.error"]?.description == "\(error)")
        #expect(entries.first?.1.contains(clientAddress.description) == true, "the message says to whom")
    }
}

@Suite("EventMode.Configuration refuses out-of-range values at server creation")
struct EventConfigurationValidationTests {
    @Test(
        "each out-of-range value is named in a clear error, and nothing is left behind",
        arguments: [
            EventMode.Configuration(loops: 0),
            EventMode.Configuration(maxConnections: 0),
            EventMode.Configuration(idleTimeout: .zero),
            EventMode.Configuration(shutdownTimeout: .seconds(-1)),
            EventMode.Configuration(readChunkSize: Int.max),
            EventMode.Configuration(maxBufferedInput: -5),
            EventMode.Configuration(outputHighWatermark: 1024, outputLowWatermark: 4096),
            EventMode.Configuration(outputHighWatermark: 1 << 20, maxBufferedOutput: 1024),
        ]
    )
    func refused(configuration: EventMode.Configuration) throws {
        let before = ResourceSnapshot()
        #expect {
            _ = try TCPServer(.loopback(), eventHandler: EventLineEcho.self, configuration: configuration)
        } throws: { error in
            guard case .invalidConfiguration(let detail) = error as? SocketServerError else { return false }
            return detail.contains("EventMode.Configuration")
        }
        #expect(throws: SocketServerError.self) {
            _ = try TCPServer(.loopback(), handler: LineEchoHandler.self,
                              mode: EventMode(handler: EventLineEcho.self, configuration: configuration))
        }
        before.expectNothingLeft()
    }

    @Test("the defaults and ordinary values are accepted")
    func accepted() throws {
        try EventMode.Configuration().validate()
        try EventMode.Configuration(loops: 2, maxConnections: 10, idleTimeout: .seconds(1)).validate()
    }
}
