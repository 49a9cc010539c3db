import Foundation
import Glibc
import Logging
import SocketServer
import SocketServerTLS
import Testing

/// Clients that do not speak TLS, never speak, reset, or stop reading: each costs only its own connection.
@Suite(.serialized)
struct TLSHostileClientTests {
    /// A plain TCP connection to `port`, with a receive timeout so that a stuck server fails the test.
    private func rawConnection(_ port: Int) throws -> Socket {
        let socket = try Socket(family: .inet, type: .stream)
        socket.timeout = .seconds(20)
        try socket.connect(to: .loopback(port: port))
        return socket
    }

    /// Reads until end of file (or an error), returning what arrived.
    private func drain(_ socket: Socket) -> [UInt8] {
        var bytes: [UInt8] = []
        while let chunk = try? socket.receive(maxLength: 4096), !chunk.isEmpty { bytes += chunk }
        return bytes
    }

    @Test("A plaintext client is refused (logged at .info with the reason) while others are served", arguments: tlsModes)
    func plaintextClient(mode: String) throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let context = try TLSContext(TLSConfiguration(certificate: pki.serverSource))
        let (logger, log) = RecordingLogHandler.makeLogger()
        let serving = Serving(try makeTLSEchoServer(mode: mode, context: context, logger: logger))
        defer { serving.stop() }
        let plain = try rawConnection(serving.port)
        try plain.sendAll(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let answer = drain(plain)
        #expect(!String(decoding: answer, as: UTF8.self).contains("HTTP"))
        plain.close()
        let good = try sClient(port: serving.port, pki: pki, input: "still here\nquit\n")
        #expect(good.stdout == "still here\n", "\(good.stderr)")
        if mode != "forking" {
            #expect(eventually { log.all.contains { $0.0 == .info && $0.1.contains("TLS handshake failed") } })
            #expect(!log.all.contains { $0.0 == .error || $0.0 == .critical })
        }
    }

    @Test("A silent client costs only its connection, closed at the handshake timeout", arguments: tlsModes)
    func silentClient(mode: String) throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let context = try TLSContext(TLSConfiguration(certificate: pki.serverSource, handshakeTimeout: .seconds(1)))
        let (logger, log) = RecordingLogHandler.makeLogger()
        let serving = Serving(try makeTLSEchoServer(mode: mode, context: context, logger: logger))
        defer { serving.stop() }
        let silent = try rawConnection(serving.port)
        defer { silent.close() }
        // Other clients are served while it is silent (in sync mode: once its handshake timed out).
        let other = try sClient(port: serving.port, pki: pki, input: "busy\nquit\n")
        #expect(other.stdout == "busy\n", "\(other.stderr)")
        // The server closes the silent connection: end of file, well before the client's own timeout.
        let started = ContinuousClock.now
        #expect(drain(silent).isEmpty)
        #expect(started.duration(to: .now) < .seconds(20))
        if mode != "forking" {
            #expect(eventually { log.all.contains { $0.0 == .info && $0.1.contains("TLS handshake timed out") } })
        }
    }

    @Test("Resets mid-handshake and mid-transfer cost only that connection", arguments: tlsModes)
    func resets(mode: String) throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let context = try TLSContext(TLSConfiguration(certificate: pki.serverSource))
        let (logger, log) = RecordingLogHandler.makeLogger()
        let serving = Serving(try makeTLSEchoServer(mode: mode, context: context, logger: logger))
        defer { serving.stop() }
        // Mid-handshake: the start of a ClientHello record, then RST.
        let early = try rawConnection(serving.port)
        try early.sendAll([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])
        try early.setLinger(zero: true)
        early.close()
        // Mid-transfer: 1 MiB sent, 64 KiB read back, then RST.
        let late = try runPythonClient(
            ["\(serving.port)", pki.caFile, "--bytes", "\(1 << 20)", "--reset-after", "65536"], directory: pki.directory)
        #expect(late.status == 0, "\(late.stdout) \(late.stderr)")
        let after = try runPythonClient(
            ["\(serving.port)", pki.caFile, "--bytes", "\(256 << 10)"], directory: pki.directory)
        #expect(after.status == 0, "\(after.stdout) \(after.stderr)")
        if mode != "forking" {
            #expect(!log.all.contains { $0.0 == .error || $0.0 == .critical }, "\(log.all)")
        }
    }

    @Test("A reader that stops exactly at the output watermark gets everything once it reads again", arguments: ["event", "async"])
    func watermarkReader(mode: String) throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let context = try TLSContext(TLSConfiguration(certificate: pki.serverSource))
        let configuration = EventMode.Configuration(loops: 1, outputHighWatermark: 64 << 10, outputLowWatermark: 16 << 10)
        let server: TCPServer =
            mode == "event"
            ? try TCPServer(.loopback(), eventHandler: TLSEventEchoHandler.self, configuration: configuration)
            : try TCPServer(.loopback(), asyncHandler: TLSAsyncEchoHandler.self, configuration: configuration)
        server.useTLS(context)
        let serving = Serving(server)
        defer { serving.stop() }
        for size in [1 << 20, (64 << 10) * 3] {
            let result = try runPythonClient(
                ["\(serving.port)", pki.caFile, "--bytes", "\(size)", "--pause-at", "\(64 << 10)"], directory: pki.directory)
            #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        }
    }
}

extension Socket {
    /// `SO_LINGER` with a zero timeout: `close()` then resets the connection.
    func setLinger(zero: Bool) throws {
        var value = linger(l_onoff: zero ? 1 : 0, l_linger: 0)
        guard setsockopt(fileDescriptor, SOL_SOCKET, SO_LINGER, &value, socklen_t(MemoryLayout<linger>.size)) == 0 else {
            throw SocketError(operation: "setsockopt", code: errno)
        }
    }
}
