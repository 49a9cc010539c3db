import Foundation
import Glibc
import SocketServer
import Logging
import SocketServerTLS
import Synchronization
import Testing

/// Only clients whose certificate names alice pass `verifyRequest`, which runs after the handshake.
final class AliceOnlyServer: TCPServer, @unchecked Sendable {
    override func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool {
        request.tls?.peerSubject?.contains("CN=alice") == true && request.tls?.isPeerVerified == true
    }
}

/// Certificates as users give them (files, encrypted keys, PEM text), ALPN, SNI, reloads, mutual TLS.
@Suite(.serialized)
struct TLSCertificateTests {
    @Test("ALPN: the server's preference among the client's offer, seen by the handler", arguments: ["threading", "event", "async"])
    func alpn(mode: String) throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let context = try TLSContext(TLSConfiguration(certificate: pki.serverSource, alpn: ["h2", "http/1.1"]))
        let serving = Serving(try makeTLSEchoServer(mode: mode, context: context))
        defer { serving.stop() }
        let both = try sClient(port: serving.port, pki: pki, input: "info\nquit\n", extra: ["-alpn", "http/1.1,h2"])
        #expect(both.stdout.contains("alpn=h2 "), "\(both.stdout) \(both.stderr)")
        let one = try sClient(port: serving.port, pki: pki, input: "info\nquit\n", extra: ["-alpn", "http/1.1"])
        #expect(one.stdout.contains("alpn=http/1.1 "), "\(one.stdout) \(one.stderr)")
        let none = try sClient(port: serving.port, pki: pki, input: "info\nquit\n", extra: ["-alpn", "spdy/3"])
        #expect(none.stdout.contains("alpn=- "), "\(none.stdout) \(none.stderr)")
    }

    @Test("SNI: a certificate per server name, the default for others", arguments: ["sync", "event"])
    func serverNames(mode: String) throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let context = try TLSContext(TLSConfiguration(
            certificate: pki.serverSource,
            serverNames: ["other.test": .files(certificateChain: pki.otherCertificate, privateKey: pki.otherKey)]))
        let serving = Serving(try makeTLSEchoServer(mode: mode, context: context))
        defer { serving.stop() }
        let other = try sClient(
            port: serving.port, pki: pki, input: "info\nquit\n",
            extra: ["-servername", "other.test", "-verify_hostname", "other.test"])
        #expect(other.status == 0, "\(other.stderr)")
        #expect(other.stdout.contains("sni=other.test "), "\(other.stdout)")
        let fallback = try sClient(
            port: serving.port, pki: pki, input: "info\nquit\n",
            extra: ["-servername", "unknown.test", "-verify_hostname", "localhost"])
        #expect(fallback.status == 0, "\(fallback.stderr)")
        #expect(fallback.stdout.contains("sni=unknown.test "), "\(fallback.stdout)")
        // The default certificate does not name other.test: a client insisting on it refuses the default.
        let wrong = try sClient(
            port: serving.port, pki: pki, input: "quit\n", extra: ["-servername", "unknown.test", "-verify_hostname", "other.test"])
        #expect(wrong.status != 0)
    }

    @Test("An encrypted key with a password file, and PEM text in memory")
    func keySources() throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let encrypted = try TLSContext(TLSConfiguration(certificate: .files(
            certificateChain: pki.serverCertificate, privateKey: pki.encryptedServerKey, passwordFile: pki.passwordFile)))
        let serving = Serving(try makeTLSEchoServer(mode: "threading", context: encrypted))
        defer { serving.stop() }
        #expect(try sClient(port: serving.port, pki: pki, input: "one\nquit\n").stdout == "one\n")
        let pem = try TLSContext(TLSConfiguration(certificate: .pem(
            certificateChain: try String(contentsOfFile: pki.serverCertificate, encoding: .utf8),
            privateKey: try String(contentsOfFile: pki.encryptedServerKey, encoding: .utf8),
            password: "correct horse battery")))
        let inMemory = Serving(try makeTLSEchoServer(mode: "event", context: pem))
        defer { inMemory.stop() }
        #expect(try sClient(port: inMemory.port, pki: pki, input: "two\nquit\n").stdout == "two\n")
        // A wrong password, a missing file, a key of another certificate: clear errors, nothing served.
        #expect(throws: TLSError.self) {
            try TLSContext(TLSConfiguration(certificate: .pem(
                certificateChain: try String(contentsOfFile: pki.serverCertificate, encoding: .utf8),
                privateKey: try String(contentsOfFile: pki.encryptedServerKey, encoding: .utf8), password: "wrong")))
        }
        #expect(throws: TLSError.self) {
            try TLSContext(TLSConfiguration(certificate: .files(certificateChain: pki.file("missing.pem"), privateKey: pki.serverKey)))
        }
        #expect(throws: TLSError.self) {
            try TLSContext(TLSConfiguration(certificate: .files(certificateChain: pki.serverCertificate, privateKey: pki.otherKey)))
        }
    }

    @Test("reloadCertificates: new handshakes get the new files; bad files keep the last good ones, logged")
    func reload() throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let live = pki.file("live.pem")
        let liveKey = pki.file("live.key")
        try FileManager.default.copyItem(atPath: pki.serverCertificate, toPath: live)
        try FileManager.default.copyItem(atPath: pki.serverKey, toPath: liveKey)
        let context = try TLSContext(TLSConfiguration(certificate: .files(certificateChain: live, privateKey: liveKey)))
        let (logger, log) = RecordingLogHandler.makeLogger()
        let serving = Serving(try makeTLSEchoServer(mode: "event", context: context, logger: logger))
        defer { serving.stop() }
        let before = try sClient(port: serving.port, pki: pki, input: "quit\n", extra: ["-verify_hostname", "localhost"])
        #expect(before.status == 0, "\(before.stderr)")
        // A half-written certificate file: the reload fails and localhost is still served.
        try "-----BEGIN CERTIFICATE-----\nnot base64\n".write(toFile: live, atomically: true, encoding: .utf8)
        #expect(serving.server.reloadCertificates() == false)
        #expect(log.all.contains { $0.0 == .error && $0.1.contains("reload failed") })
        let kept = try sClient(port: serving.port, pki: pki, input: "quit\n", extra: ["-verify_hostname", "localhost"])
        #expect(kept.status == 0, "\(kept.stderr)")
        // New files: the next handshake shows the other certificate.
        _ = rename(pki.otherCertificate, live)
        _ = rename(pki.otherKey, liveKey)
        #expect(serving.server.reloadCertificates())
        let after = try sClient(port: serving.port, pki: pki, input: "quit\n", extra: ["-verify_hostname", "other.test"])
        #expect(after.status == 0, "\(after.stderr)")
    }

    @Test("Reloading under load fails no handshake", arguments: ["threading", "event"])
    func reloadUnderLoad(mode: String) throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let context = try TLSContext(TLSConfiguration(certificate: pki.serverSource))
        let serving = Serving(try makeTLSEchoServer(mode: mode, context: context))
        defer { serving.stop() }
        let reloads = ReloadLoop(serving.server)
        let result = try runPythonClient(
            ["\(serving.port)", pki.caFile, "--text", "load\n", "--connections", "200"], directory: pki.directory)
        let count = reloads.stop()
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        #expect(count > 0)
    }

    @Test("Mutual TLS required: a client certificate from the CA is served, others are refused in the handshake", arguments: tlsModes)
    func mutualRequired(mode: String) throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let context = try TLSContext(TLSConfiguration(
            certificate: pki.serverSource, clientAuthentication: .required(trustedCAFile: pki.caFile)))
        let (logger, log) = RecordingLogHandler.makeLogger()
        let serving = Serving(try makeTLSEchoServer(mode: mode, context: context, logger: logger))
        defer { serving.stop() }
        let good = try sClient(
            port: serving.port, pki: pki, input: "info\nquit\n", extra: ["-cert", pki.clientCertificate, "-key", pki.clientKey])
        #expect(good.stdout.hasSuffix("subject=CN=alice,O=Example verified\n"), "\(good.stdout) \(good.stderr)")
        for (certificate, key) in [
            (pki.wrongCAClientCertificate, pki.wrongCAClientKey), (pki.expiredClientCertificate, pki.expiredClientKey),
        ] {
            let refused = try sClient(port: serving.port, pki: pki, input: "info\nquit\n", extra: ["-cert", certificate, "-key", key])
            #expect(!refused.stdout.contains("subject="), "\(refused.stdout)")
        }
        let anonymous = try sClient(port: serving.port, pki: pki, input: "info\nquit\n")
        #expect(!anonymous.stdout.contains("subject="), "\(anonymous.stdout)")
        if mode != "forking" {  // a forked child logs through its own copy of the logger
            #expect(eventually { log.all.filter { $0.0 == .info && $0.1.contains("TLS handshake failed") }.count >= 3 })
            #expect(!log.all.contains { $0.0 == .error })
        }
    }

    @Test("Mutual TLS optional: verifyRequest sees the subject and the verification after the handshake", arguments: ["sync", "pool", "event", "async"])
    func verifyRequestSeesPeer(mode: String) throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let context = try TLSContext(TLSConfiguration(
            certificate: pki.serverSource, clientAuthentication: .optional(trustedCAFile: pki.caFile)))
        let server: TCPServer =
            switch mode {
            case "event": try AliceOnlyServer(.loopback(), eventHandler: TLSEventEchoHandler.self)
            case "async": try AliceOnlyServer(.loopback(), asyncHandler: TLSAsyncEchoHandler.self)
            case "pool": try AliceOnlyServer(.loopback(), handler: TLSEchoHandler.self, mode: ThreadPoolMode(workers: 2))
            default: try AliceOnlyServer(.loopback(), handler: TLSEchoHandler.self)
            }
        server.useTLS(context)
        let serving = Serving(server)
        defer { serving.stop() }
        let alice = try sClient(
            port: serving.port, pki: pki, input: "info\nquit\n", extra: ["-cert", pki.clientCertificate, "-key", pki.clientKey])
        #expect(alice.stdout.hasSuffix("subject=CN=alice,O=Example verified\n"), "\(alice.stdout) \(alice.stderr)")
        let stranger = try sClient(
            port: serving.port, pki: pki, input: "info\nquit\n",
            extra: ["-cert", pki.wrongCAClientCertificate, "-key", pki.wrongCAClientKey])
        #expect(stranger.stdout.isEmpty, "\(stranger.stdout)")
        let anonymous = try sClient(port: serving.port, pki: pki, input: "info\nquit\n")
        #expect(anonymous.stdout.isEmpty, "\(anonymous.stdout)")
    }

    @Test("Mutual TLS optional: the handler sees a failed verification")
    func optionalReportsFailure() throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let context = try TLSContext(TLSConfiguration(
            certificate: pki.serverSource, clientAuthentication: .optional(trustedCAFile: pki.caFile)))
        let serving = Serving(try makeTLSEchoServer(mode: "threading", context: context))
        defer { serving.stop() }
        let expired = try sClient(
            port: serving.port, pki: pki, input: "info\nquit\n",
            extra: ["-cert", pki.expiredClientCertificate, "-key", pki.expiredClientKey])
        #expect(expired.stdout.contains("subject=CN=expired failed:certificate has expired"), "\(expired.stdout)")
        let anonymous = try sClient(port: serving.port, pki: pki, input: "info\nquit\n")
        #expect(anonymous.stdout.hasSuffix("subject=- no-certificate\n"), "\(anonymous.stdout)")
    }
}

/// Reloads a server's certificates in a loop on a thread of its own until `stop()`.
final class ReloadLoop: @unchecked Sendable {
    private final class State: Sendable {
        let value = SanitizedMutex<(stop: Bool, count: Int, done: Bool)>((false, 0, false))
    }

    private let thread: Thread
    private let state = State()

    init(_ server: TCPServer) {
        let state = self.state
        thread = Thread {
            while !state.value.withLock({ $0.stop }) {
                let ok = server.reloadCertificates()
                state.value.withLock { if ok { $0.count += 1 } }
                usleep(2_000)
            }
            state.value.withLock { $0.done = true }
        }
        thread.start()
    }

    /// Stops the loop and returns how many reloads succeeded.
    func stop() -> Int {
        state.value.withLock { $0.stop = true }
        _ = eventually { state.value.withLock { $0.done } }
        return state.value.withLock { $0.count }
    }
}
