import Foundation
import Glibc
import SocketServer
import SocketServerTLS
import Testing

/// TLS echo in every stream mode, with openssl s_client and Python's ssl module as clients.
@Suite(.serialized)
struct TLSEchoTests {
    @Test("openssl s_client echoes over TLS 1.3 and TLS 1.2 in every mode", arguments: tlsModes)
    func sClientEcho(mode: String) throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let context = try TLSContext(TLSConfiguration(certificate: pki.serverSource))
        let serving = Serving(try makeTLSEchoServer(mode: mode, context: context))
        defer { serving.stop() }
        for (flag, version) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
            let result = try sClient(port: serving.port, pki: pki, input: "hello\ninfo\nquit\n", extra: [flag])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "hello\n\(version) alpn=- sni=- subject=- no-certificate\n", "\(result.stderr)")
        }
    }

    @Test("Python's ssl module: 1 MiB across 16 KiB records, three connections in a row", arguments: tlsModes)
    func pythonBulk(mode: String) throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let context = try TLSContext(TLSConfiguration(certificate: pki.serverSource))
        let serving = Serving(try makeTLSEchoServer(mode: mode, context: context))
        defer { serving.stop() }
        let result = try runPythonClient(
            ["\(serving.port)", pki.caFile, "--bytes", "\(1 << 20)", "--connections", "3"], directory: pki.directory)
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.hasPrefix("ok TLSv1.3"))
    }

    @Test("TLS over IPv6 and over a Unix stream socket", arguments: ["threading", "event"])
    func otherFamilies(mode: String) throws {
        let pki = try TestPKI()
        defer { pki.cleanup() }
        let context = try TLSContext(TLSConfiguration(certificate: pki.serverSource))
        let six = Serving(try makeTLSEchoServer(mode: mode, context: context, address: .loopbackIPv6(port: 0)))
        defer { six.stop() }
        let viaIPv6 = try runPythonClient(
            ["\(six.port)", pki.caFile, "--host", "::1", "--text", "over six\n"], directory: pki.directory)
        #expect(viaIPv6.status == 0, "\(viaIPv6.stdout) \(viaIPv6.stderr)")
        let path = pki.directory.file("tls.sock")
        let unix = Serving(try makeTLSEchoServer(mode: mode, context: context, address: try SocketAddress(unixPath: path)))
        defer { unix.stop() }
        let viaUnix = try runPythonClient(
            ["0", pki.caFile, "--unix", path, "--text", "over unix\n"], directory: pki.directory)
        #expect(viaUnix.status == 0, "\(viaUnix.stdout) \(viaUnix.stderr)")
    }
}
