import Glibc
import Logging
import Testing

@testable import SocketServer

// A peer controls the sizes a handler computes from its input (a length prefix, a line without end). These
// tests send hostile ones over real loopback connections, in every blocking mode, and check that they cost
// only that connection: no trap, no allocation in proportion to a claimed size, the next client served.

/// The resident memory of the current process, from `/proc/self/status` (no Foundation, so that a forked
/// child can use it too).
enum MemoryProbe {
    /// Resets the peak resident set size (`VmHWM`) to the current one (`/proc/self/clear_refs`, Linux 4.0+);
    /// returns whether the kernel took it.
    static func resetPeak() -> Bool {
        let fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return write(fd, "5", 1) == 1
    }

    /// `VmRSS` and `VmHWM` in bytes (0 when unreadable).
    static func usage() -> (resident: Int, peak: Int) {
        guard let file = fopen("/proc/self/status", "r") else { return (0, 0) }
        defer { fclose(file) }
        var resident = 0
        var peak = 0
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let kilobytes = Int(text.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? "") ?? 0
            if text.hasPrefix("VmRSS:") { resident = kilobytes * 1024 }
            if text.hasPrefix("VmHWM:") { peak = kilobytes * 1024 }
        }
        return (resident, peak)
    }

    /// Runs `body` and returns its result with how far resident memory rose during it: the peak when the
    /// peak could be reset, else the growth from before to after.
    static func growth<Result>(during body: () throws -> Result) rethrows -> (Result, Int) {
        let peakWasReset = resetPeak()
        let before = usage()
        let result = try body()
        let after = usage()
        let top = peakWasReset ? max(after.peak, after.resident) : after.resident
        return (result, max(top - before.resident, 0))
    }
}

/// "A few MiB": what a hostile size may cost at most, far below any claimed size the tests send.
let hostileGrowthLimit = 8 << 20

/// A length-prefixed message reader, the shape a hostile length targets. The client first sends one
/// selector byte (taken straight from the connection, before `rfile` exists, so that it can pick
/// `maxReadLength`):
/// - `u`: a 4-byte big-endian length, `maxReadLength` unbounded (`Int.max`);
/// - `U`: an 8-byte big-endian length read as a signed `Int`, unbounded;
/// - `b`: a 4-byte length, the default `maxReadLength`;
/// - `x`: as `b`, but the refusal is not caught, so it reaches `handleError` and ends the connection.
///
/// Then `rfile.read(length)`; replies `"read <count> grew <bytes>\n"` or `"refused grew <bytes>\n"`, where
/// `grew` is how much this process's resident memory rose during the read (in a forked child, the child's).
final class LengthPrefixedReadHandler: StreamRequestHandler {
    private var selector = UInt8(ascii: "b")

    override var timeout: Duration? { .seconds(10) }
    override var maxReadLength: Int {
        selector == UInt8(ascii: "u") || selector == UInt8(ascii: "U") ? .max : super.maxReadLength
    }

    override func handle() throws {
        guard let first = try connection.receive(maxLength: 1).first else { return }
        selector = first
        let header = try rfile.read(selector == UInt8(ascii: "U") ? 8 : 4)
        let claimed = header.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let count = Int(truncatingIfNeeded: claimed)
        let (outcome, grew) = try MemoryProbe.growth { () throws -> String in
            do {
                return "read \(try rfile.read(count).count)"
            } catch let error as SocketServerError where selector != UInt8(ascii: "x") {
                guard case .readLengthOutOfRange = error else { throw error }
                return "refused"
            }
        }
        try wfile.write("\(outcome) grew \(grew)\n")
    }
}

/// How the hostile-length conversation goes for one client.
struct HostileLengthCase: CustomStringConvertible, Sendable {
    let selector: Character
    let header: [UInt8]
    let body: [UInt8]
    /// The reply's first word(s), or nil when the connection should just end.
    let expected: String?

    var description: String { "\(selector) \(header.map { String($0, radix: 16) }.joined(separator: " "))" }

    static let tenBytes = Array("0123456789".utf8)

    /// Claims 4 GiB - 1 (a 32-bit length of 0xFFFFFFFF), sends 10 bytes, closes.
    static let claim4GiB = Self(selector: "u", header: [0xFF, 0xFF, 0xFF, 0xFF], body: tenBytes, expected: "read 10")
    /// Claims 1 GiB, sends 10 bytes, closes: what the code before the fix allocated and zeroed at once.
    static let claim1GiB = Self(selector: "u", header: [0x40, 0, 0, 0], body: tenBytes, expected: "read 10")
    /// Claims `Int.max` bytes in a 64-bit length, sends 10 bytes, closes: overflowed `tail + request`
    /// before the fix.
    static let claimIntMax = Self(
        selector: "U", header: [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], body: tenBytes, expected: "read 10")
    /// Claims `Int.max - 9`: read(n) near `Int.max` with a few bytes already buffered after the header.
    static let claimNearIntMax = Self(
        selector: "U", header: [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF6], body: tenBytes, expected: "read 10")
    /// A 64-bit length of all ones: -1 as a signed count.
    static let claimMinusOne = Self(
        selector: "U", header: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], body: tenBytes, expected: "refused")
    /// 4 GiB - 1 against the default `maxReadLength` (16 MiB): refused before anything is received.
    static let claimOverDefaultLimit = Self(
        selector: "b", header: [0xFF, 0xFF, 0xFF, 0xFF], body: tenBytes, expected: "refused")
    /// The same refusal left to `handleError`: the connection just ends.
    static let claimUncaught = Self(selector: "x", header: [0xFF, 0xFF, 0xFF, 0xFF], body: tenBytes, expected: nil)
    /// A well-formed message, after which every hostile one is checked.
    static let normal = Self(selector: "b", header: [0, 0, 0, 5], body: Array("hello".utf8), expected: "read 5")

    static let hostile: [Self] = [
        claim4GiB, claim1GiB, claimIntMax, claimNearIntMax, claimMinusOne, claimOverDefaultLimit, claimUncaught,
    ]

    /// Sends the message, half-closes, and checks the reply (or the end of the connection).
    func run(against address: SocketAddress, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let client = try TestClient(connectingTo: address)
        defer { client.close() }
        try client.socket.sendAll([UInt8(ascii: selector.unicodeScalars.first ?? "b")] + header + body)
        try client.socket.shutdown(.write)
        let reply = try client.readLine()
        guard let expected else {
            #expect(reply == "", "\(self): the connection ends without a reply", sourceLocation: sourceLocation)
            return
        }
        let words = reply.dropLast().split(separator: " ")
        #expect(reply.hasPrefix(expected + " grew "), "\(self): got \(reply.debugDescription)", sourceLocation: sourceLocation)
        let grew = words.last.flatMap { Int($0) } ?? Int.max
        #expect(grew <= hostileGrowthLimit, "\(self): resident memory grew by \(grew) bytes", sourceLocation: sourceLocation)
        #expect(try client.readToEnd() == "", sourceLocation: sourceLocation)
    }
}

/// Every hostile case against one server, each followed by a normal client that must be served.
func runHostileLengths(against server: TCPServer, sourceLocation: SourceLocation = #_sourceLocation) throws {
    server.logger = Logger(label: "hostile-input") { _ in SwiftLogNoOpLogHandler() }
    try withServing(server) { server throws in
        try HostileLengthCase.normal.run(against: server.serverAddress, sourceLocation: sourceLocation)
        for hostile in HostileLengthCase.hostile {
            try hostile.run(against: server.serverAddress, sourceLocation: sourceLocation)
            try HostileLengthCase.normal.run(against: server.serverAddress, sourceLocation: sourceLocation)
        }
    }
}

/// The blocking modes whose handlers run in this process.
enum InProcessMode: String, CaseIterable, Sendable {
    case sync, threading, pool

    func make() -> any ConcurrencyMode {
        switch self {
        case .sync: SynchronousMode()
        case .threading: ThreadingMode()
        case .pool: ThreadPoolMode(workers: 2, queueCapacity: 4)
        }
    }
}

@Suite("Hostile input: lengths from the peer", .serialized)
struct HostileLengthTests {
    @Test(arguments: InProcessMode.allCases)
    func hostileLengthPrefixesCostOnlyTheirConnection(_ mode: InProcessMode) throws {
        let before = ResourceSnapshot()
        let server = try TCPServer(.loopback(), handler: LengthPrefixedReadHandler.self, mode: mode.make())
        try runHostileLengths(against: server)
        before.expectNothingLeft()
    }

    @Test(.enabled(if: !ModeTest.underThreadSanitizer, ModeTest.forkingUnderSanitizerReason))
    func hostileLengthPrefixesCostOnlyTheirChildWhenForking() throws {
        let watchdog = try ForkWatchdog()
        defer { watchdog.stop() }
        let before = ResourceSnapshot()
        let server = try ForkingTCPServer(.loopback(), handler: LengthPrefixedReadHandler.self)
        try runHostileLengths(against: server)
        before.expectNothingLeft()
    }

    /// A refusal that reaches `handleError` is the documented `readLengthOutOfRange`.
    @Test func anUncaughtRefusalReachesHandleError() throws {
        let server = try ErrorCollectingServer(.loopback(), handler: LengthPrefixedReadHandler.self)
        try withServing(server) { server throws in
            try HostileLengthCase.claimUncaught.run(against: server.serverAddress)
            try HostileLengthCase.normal.run(against: server.serverAddress)
        }
        let errors = server.errors.withLock { $0.compactMap { $0 as? SocketServerError } }
        #expect(errors == [.readLengthOutOfRange(count: 0xFFFF_FFFF, limit: RequestReader.defaultMaxReadLength)])
    }

    /// A line without end and an unbounded body both stop at their limits, in the server.
    @Test func endlessLineAndEndlessBodyStopAtTheirLimits() throws {
        let server = try ErrorCollectingServer(.loopback(), handler: ReadToEndHandler.self)
        server.logger = Logger(label: "hostile-input") { _ in SwiftLogNoOpLogHandler() }
        try withServing(server) { server throws in
            for (selector, size) in [("l", 200_000), ("e", 300_000)] {
                let client = try TestClient(connectingTo: server.serverAddress)
                defer { client.close() }
                try client.send(selector)
                // The server stops reading at its limit and closes: a send may then fail, which is fine.
                _ = try? client.socket.sendAll([UInt8](repeating: UInt8(ascii: "a"), count: size))
                _ = try? client.socket.shutdown(.write)
                #expect((try? client.readToEnd()) ?? "" == "", "no reply past a limit")
            }
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            try client.send("eshort")
            try client.socket.shutdown(.write)
            #expect(try client.readLine() == "5\n")
        }
        let errors = server.errors.withLock { $0.compactMap { $0 as? SocketServerError } }
        #expect(errors == [.lineTooLong(limit: 65536), .inputTooLong(limit: ReadToEndHandler.limit)])
    }
}

/// First byte `l`: reads a line (default limit); `e`: reads to end with a 100 KB limit and replies its size.
final class ReadToEndHandler: StreamRequestHandler {
    static let limit = 100_000
    override var timeout: Duration? { .seconds(10) }
    override func handle() throws {
        let selector = try rfile.read(1)
        if selector == Array("l".utf8) {
            try wfile.write("\(try rfile.readLine().count)\n")
        } else {
            try wfile.write("\(try rfile.readToEnd(maxLength: Self.limit).count)\n")
        }
    }
}

@Suite("Hostile input: ports and configured sizes")
struct HostileSizeTests {
    static let badPorts = [65536, 70000, -1, Int.max, Int.min]

    @Test(arguments: badPorts)
    func anOutOfRangeLoopbackPortDoesNotTrap(_ port: Int) throws {
        for (address, host) in [(SocketAddress.loopback(port: port), "127.0.0.1"), (.loopbackIPv6(port: port), "::1")] {
            #expect(address.port == port, "the port it was given, for messages")
            #expect(address.host == host)
            #expect(address.family == (host == "::1" ? .inet6 : .inet))
            #expect(address.description.hasSuffix(":\(port) (invalid port)"), "\(address)")
            #expect(address.length == 0)
            let hostAndPort = host == "::1" ? "[::1]:\(port)" : "127.0.0.1:\(port)"
            #expect(throws: SocketServerError.invalidAddress("\(hostAndPort): port outside 0...65535")) {
                try address.validate()
            }
            #expect(address == (host == "::1" ? .loopbackIPv6(port: port) : .loopback(port: port)))
            #expect(address != .loopback(port: 0) && address != .loopbackIPv6(port: 0))
        }
        #expect(SocketAddress.loopback(port: port) != .loopbackIPv6(port: port))
        #expect(Set([SocketAddress.loopback(port: port), .loopback(port: port)]).count == 1)
    }

    @Test(arguments: badPorts)
    func anOutOfRangePortFailsWhenUsed(_ port: Int) throws {
        // Binding: the server's initialiser throws (the kernel refuses a zero-length address), keeping
        // nothing open.
        let before = openDescriptorCount()
        #expect(throws: SocketError(operation: "bind", code: EINVAL)) {
            _ = try TCPServer(.loopback(port: port), handler: LineEchoHandler.self)
        }
        #expect(throws: SocketError(operation: "bind", code: EINVAL)) {
            _ = try UDPServer(.loopback(port: port), handler: DatagramEchoHandler.self)
        }
        #expect(openDescriptorCount() <= before)
        // Connecting and sending.
        let stream = try Socket(family: .inet, type: .stream)
        defer { stream.close() }
        #expect(throws: SocketError(operation: "connect", code: EINVAL)) { try stream.connect(to: .loopback(port: port)) }
        let datagram = try Socket(family: .inet, type: .datagram)
        defer { datagram.close() }
        #expect(throws: SocketError(operation: "sendto", code: EINVAL)) {
            try datagram.send(Array("x".utf8), to: .loopback(port: port))
        }
    }

    @Test func theEdgesOfThePortRangeAreValid() throws {
        for port in [0, 1, 65535] {
            try SocketAddress.loopback(port: port).validate()
            try SocketAddress.loopbackIPv6(port: port).validate()
            #expect(SocketAddress.loopback(port: port).port == port)
            #expect(SocketAddress.loopback(port: port).description == "127.0.0.1:\(port)")
        }
        try SocketAddress.unspecified.validate()
        #expect(throws: SocketServerError.invalidAddress("127.0.0.1:70000")) {
            _ = try SocketAddress(host: "127.0.0.1", port: 70000)
        }
    }

    @Test func eventModeConfigurationClampsEverySize() {
        var configuration = EventMode.Configuration(
            loops: -3, maxConnections: -1, shutdownTimeout: .seconds(-1), readChunkSize: .max,
            maxBufferedInput: -1, outputHighWatermark: .min, outputLowWatermark: .max, maxBufferedOutput: -5)
        #expect(configuration.loops == 1)
        #expect(configuration.maxConnections == 1)
        #expect(configuration.shutdownTimeout == .zero)
        #expect(configuration.readChunkSize == EventMode.Configuration.maxReadChunkSize)
        #expect(configuration.maxBufferedInput == 1)
        #expect(configuration.outputHighWatermark == 1)
        #expect(configuration.outputLowWatermark == 1)
        #expect(configuration.maxBufferedOutput == 1)
        // Assignments after the initialiser are clamped the same way.
        configuration.loops = .min
        configuration.readChunkSize = -1
        configuration.shutdownTimeout = .seconds(Int64.max)
        configuration.outputHighWatermark = 1000
        configuration.outputLowWatermark = -7
        configuration.maxBufferedOutput = 10
        #expect(configuration.loops == 1)
        #expect(configuration.readChunkSize == EventMode.Configuration.minReadChunkSize)
        #expect(configuration.shutdownTimeout == EventMode.Configuration.maxShutdownTimeout)
        #expect(configuration.outputLowWatermark == 0)
        #expect(configuration.maxBufferedOutput == 1000, "never below the high watermark")
        // The order of the watermarks holds whichever is set last.
        configuration.outputLowWatermark = 500
        configuration.outputHighWatermark = 100
        #expect(configuration.outputLowWatermark == 100)
        configuration.outputHighWatermark = 2000
        #expect(configuration.outputLowWatermark == 500)
        #expect(configuration.maxBufferedOutput == 2000)
    }

    /// A server refuses the extremes with a clear error (issue 10: no silent clamping), while a mode built
    /// from them without a server still works on the clamped values (its loops allocate 16 MiB buffers, not
    /// `Int.max`).
    @Test func anEventServerWithExtremeSizesIsRefusedAndTheModeStaysSafe() throws {
        let configuration = EventMode.Configuration(
            loops: 1, readChunkSize: .max, maxBufferedInput: .max, outputHighWatermark: .max,
            maxBufferedOutput: .max)
        #expect(throws: SocketServerError.self) {
            _ = try TCPServer(.loopback(), eventHandler: EventLineEcho.self, configuration: configuration)
        }
        let mode = EventMode(handler: EventLineEcho.self, configuration: configuration)
        try mode.startLoops()
        mode.serverClose(server: try TCPServer(.loopback(), handler: LineEchoHandler.self))
    }
}
