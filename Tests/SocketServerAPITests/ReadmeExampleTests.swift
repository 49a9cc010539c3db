import Foundation
import SocketServer
import Synchronization
import Testing

// Every `<!-- example: NAME -->` block of README.md is copied between `// example: NAME` and
// `// end example: NAME` below, where it compiles against the public API and then runs. The lines that
// start serving for ever (`try server.serveForever()`) are left out here: each test serves its servers for
// a moment instead and talks to them. `readmeExamplesMatchTheseTests` fails when a copy drifts.

/// The README's echo handler, for the examples that use it after the first.
final class EchoHandler: StreamRequestHandler {
    override func handle() throws {
        while true {
            let line = try rfile.readLine()
            if line.isEmpty { return }
            try wfile.write(line)
        }
    }
}

@Suite("README examples, through the public API", .serialized)
struct ReadmeExampleTests {
    @Test func echo() throws {
        // example: echo
        final class EchoHandler: StreamRequestHandler {
            override func handle() throws {
                while true {
                    let line = try rfile.readLine()      // bytes up to and including "\n"; empty at end of file
                    if line.isEmpty { return }
                    try wfile.write(line)                // sent whole, or throws
                }
            }
        }

        let server = try TCPServer(.loopback(port: 0), handler: EchoHandler.self)   // port 0: any free port
        defer { server.serverClose() }
        print("listening on \(server.serverAddress)")
        // end example: echo
        try whileServing(server) {
            let reply = try roundTrip("hello\n", to: server.serverAddress)
            #expect(reply == "hello\n")
        }
    }

    @Test func customising() throws {
        // example: customising
        final class LocalOnlyServer: TCPServer, @unchecked Sendable {
            override func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool {
                clientAddress.host == "127.0.0.1"
            }
        }

        let server = try LocalOnlyServer(
            .loopback(), handler: EchoHandler.self,
            configuration: ServerConfiguration(allowReuseAddress: true, requestQueueSize: 64))

        let unbound = try TCPServer(.loopback(), handler: EchoHandler.self, bindAndActivate: false)
        unbound.requestQueueSize = 128
        try unbound.serverBind()       // serverAddress now holds the real port
        try unbound.serverActivate()
        // end example: customising
        #expect(server.allowReuseAddress)
        #expect(server.requestQueueSize == 64)
        #expect(server.configuration.requestQueueSize == 64)
        #expect(unbound.configuration.requestQueueSize == 128)
        try whileServing(server) {
            let reply = try roundTrip("local\n", to: server.serverAddress)
            #expect(reply == "local\n")
        }
        try whileServing(unbound) {
            let reply = try roundTrip("bound later\n", to: unbound.serverAddress)
            #expect(reply == "bound later\n")
        }
    }

    @Test func dependencies() throws {
        // example: dependencies
        /// A thread-safe counter shared by every request.
        final class Counter: Sendable {
            private let value = Atomic(0)
            func next() -> Int { value.add(1, ordering: .relaxed).newValue }
        }

        final class CountingEcho: DependentStreamRequestHandler<Counter> {
            override func handle() throws {
                let line = try rfile.readLine()
                try wfile.write("\(dependencies.next()) ")
                try wfile.write(line)
            }
        }

        final class CountingLineEcho: DependentEventStreamHandler<Counter> {
            override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
                while let line = input.readLine() {
                    connection.write("\(dependencies.next()) ")
                    connection.write(line)
                }
            }
        }

        let counter = Counter()
        let pooled = try TCPServer(.loopback(), handler: CountingEcho.self, dependencies: counter,
                                   mode: ThreadPoolMode(workers: 4))
        let threaded = try TCPServer(.loopback(), mode: ThreadingMode()) { context in
            CountingEcho(context, dependencies: counter)      // a factory: any code that returns a handler
        }
        let evented = try TCPServer(.loopback(), eventHandler: CountingLineEcho.self, dependencies: counter,
                                    configuration: .init(loops: 2))
        // end example: dependencies
        var numbers: [Int] = []
        for server in [pooled, threaded, evented] {
            try whileServing(server) {
                for _ in 0..<3 {
                    let reply = try roundTrip("hi\n", to: server.serverAddress)
                    #expect(reply.hasSuffix(" hi\n"))
                    numbers.append(Int(reply.split(separator: " ")[0]) ?? -1)
                }
            }
        }
        #expect(numbers == Array(1...9), "one counter shared by the pool, threading and event servers")
    }

    @Test func modes() throws {
        // example: modes
        final class Echo: StreamRequestHandler {
            override func handle() throws { try wfile.write(try rfile.readLine()) }
        }
        let threaded = try ThreadingTCPServer(.loopback(), handler: Echo.self)
        let forked   = try ForkingTCPServer(.loopback(), handler: Echo.self)
        let pooled   = try TCPServer(.loopback(), handler: Echo.self,
                                     mode: ThreadPoolMode(workers: 8, queueCapacity: 64))
        let capped   = try ThreadingTCPServer(.loopback(), handler: Echo.self,
                                              mode: ThreadingMode(maxConcurrentRequests: 256))
        // end example: modes
        for server in [threaded, pooled, capped] {
            try whileServing(server) {
                let reply = try roundTrip("mode\n", to: server.serverAddress)
            #expect(reply == "mode\n")
            }
        }
        forked.serverClose()
        #expect(forked.lifecycleState == .closed)
    }

    @Test func event() throws {
        // example: event
        final class LineEcho: EventStreamHandler {
            override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
                while let line = input.readLine() {   // a view into the loop's buffer: no copy
                    connection.write(line)            // never blocks; what the peer can't take yet is queued
                }
            }
        }

        let server = try TCPServer(
            .loopback(), eventHandler: LineEcho.self,
            configuration: .init(loops: 2, maxConnections: 10_000, idleTimeout: .seconds(300)))
        // end example: event
        try whileServing(server) {
            let reply = try roundTrip("event\n", to: server.serverAddress)
            #expect(reply == "event\n")
        }
    }

    @Test func async() async throws {
        // example: async
        final class AsyncEcho: AsyncStreamRequestHandler {
            override func handle() async throws {
                for try await line in rfile.lines {   // empty at end of input ends the loop
                    try await wfile.write(line)       // returns at once below the high watermark, else waits
                }
            }
        }

        let server = try TCPServer(.loopback(), asyncHandler: AsyncEcho.self, configuration: .init(loops: 2))
        // end example: async
        let serving = Task { try await server.run() }
        let address = server.serverAddress
        let reply = try await Task.detached { () -> String in
            let deadline = ContinuousClock.now + .seconds(20)
            while !server.isServing && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            return try roundTrip("async\n", to: address)
        }.value
        #expect(reply == "async\n")
        serving.cancel()
        try await serving.value
        #expect(server.lifecycleState == .closed)
    }

    @Test func asyncDatagram() async throws {
        // example: async-datagram
        final class AsyncUDPEcho: AsyncDatagramRequestHandler {
            override func handle() async throws {
                try reply(packet)                     // one datagram back to clientAddress, never blocks
            }
        }

        let udp = try UDPServer(.loopback(), asyncHandler: AsyncUDPEcho.self, configuration: .init(loops: 2))
        // end example: async-datagram
        let serving = Task { try await udp.run() }
        let address = udp.serverAddress
        let reply = try await Task.detached { () -> String in
            let deadline = ContinuousClock.now + .seconds(20)
            while !udp.isServing && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            let client = try Socket(family: .inet, type: .datagram)
            defer { client.close() }
            client.timeout = .seconds(10)
            try client.send(Array("datagram".utf8), to: address)
            return String(decoding: try client.receiveFrom(maxLength: 64).0, as: UTF8.self)
        }.value
        #expect(reply == "datagram")
        serving.cancel()
        try await serving.value
        #expect(udp.lifecycleState == .closed)
    }

    @Test func parking() throws {
        // example: parking
        final class KeepAliveEcho: StreamRequestHandler {
            override func handle() throws {
                while true {
                    let line = try rfile.readLine()
                    if line.isEmpty { return }
                    try wfile.write(line)
                    // Nothing of the next line here yet: wait on the server's loop, not on this worker.
                    if parkConnection(idleTimeout: .seconds(5)) { return }
                }
            }
        }

        let server = try TCPServer(.loopback(), handler: KeepAliveEcho.self, mode: ThreadPoolMode(workers: 2))
        // end example: parking
        defer { server.serverClose() }
        try whileServing(server) {
            // Three idle kept-alive connections, then each again: two workers serve them all.
            let address = server.serverAddress
            var sockets: [(Socket, RequestReader)] = []
            defer { for (socket, _) in sockets { socket.close() } }
            for index in 0..<3 {
                let socket = try Socket(family: address.family, type: .stream)
                socket.timeout = .seconds(20)
                try socket.connect(to: address)
                try socket.sendAll(Array("first \(index)\n".utf8))
                let reader = RequestReader(socket: socket)
                #expect(String(decoding: try reader.readLine(), as: UTF8.self) == "first \(index)\n")
                sockets.append((socket, reader))
            }
            for (index, (socket, reader)) in sockets.enumerated() {
                try socket.sendAll(Array("again \(index)\n".utf8))
                #expect(String(decoding: try reader.readLine(), as: UTF8.self) == "again \(index)\n")
            }
        }
    }

    @Test func readmeExamplesMatchTheseTests() throws {
        let here = URL(fileURLWithPath: #filePath)
        let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let tests = try String(contentsOf: here, encoding: .utf8)
        let examples = Self.readmeExamples(readme)
        #expect(examples.map(\.name) == ["echo", "customising", "dependencies", "modes", "event", "async", "async-datagram", "parking"])
        for example in examples {
            let copy = Self.testCopy(named: example.name, in: tests)
            #expect(copy != nil, "README example \(example.name) has no copy in \(here.lastPathComponent)")
            #expect(copy == example.lines, "README example \(example.name) differs from its test copy")
        }
    }

    /// The README's marked Swift blocks, as trimmed lines without imports, blank lines and the line that
    /// serves for ever.
    static func readmeExamples(_ readme: String) -> [(name: String, lines: [String])] {
        var examples: [(name: String, lines: [String])] = []
        var pending: String?
        var current: [String]?
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("<!-- example: "), trimmed.hasSuffix(" -->") {
                pending = String(trimmed.dropFirst("<!-- example: ".count).dropLast(" -->".count))
            } else if trimmed == "```swift", pending != nil {
                current = []
            } else if trimmed == "```", let lines = current, let name = pending {
                examples.append((name, lines))
                current = nil
                pending = nil
            } else if current != nil, Self.isCompared(trimmed) {
                current?.append(trimmed)
            }
        }
        return examples
    }

    /// The lines between `// example: name` and `// end example: name` in this file, filtered the same way.
    static func testCopy(named name: String, in source: String) -> [String]? {
        var lines: [String]?
        for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "// example: \(name)" {
                lines = []
            } else if trimmed == "// end example: \(name)" {
                return lines
            } else if lines != nil, Self.isCompared(trimmed) {
                lines?.append(trimmed)
            }
        }
        return nil
    }

    private static func isCompared(_ line: String) -> Bool {
        !line.isEmpty && !line.hasPrefix("import ") && !line.contains(".serveForever(")
            && !line.contains(".run()")
    }
}
