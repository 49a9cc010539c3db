import Foundation
import Glibc
import Testing

@testable import SocketServer

/// `socketserver-demo echo` and `http` over TLS (`--tls-cert`, `--tls-key`, `--tls-client-ca`), SIGHUP
/// reloads, and `echo --unix --allow-uid`, against curl and openssl s_client.
@Suite(.serialized)
struct DemoTLSTests {
    /// A CA, a server certificate for localhost, a second one for the reload test, a client certificate.
    struct Certificates {
        let directory = TemporaryDirectory()
        func file(_ name: String) -> String { directory.path + "/" + name }

        init() throws {
            let script = #"""
                set -e
                cd "$1"
                key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
                key ca.key
                openssl req -x509 -new -key ca.key -subj "/CN=Demo Test CA" -days 2 -out ca.pem
                sign() {
                    key "$1.key"
                    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
                    printf '%s\n' "$3" > "$1.ext"
                    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
                        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
                }
                sign server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1"
                sign renewed "/O=Renewed/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1"
                sign client "/CN=demo-client" "extendedKeyUsage=clientAuth"
                """#
            let result = try runTool(["/bin/bash", "-c", script, "pki", directory.path])
            guard result.status == 0 else {
                directory.cleanup()
                throw DemoHarnessError(description: "certificate generation failed: \(result.stderr)")
            }
        }

        var serverArguments: [String] { ["--tls-cert", file("server.pem"), "--tls-key", file("server.key")] }

        func cleanup() { directory.cleanup() }
    }

    @Test("https: curl --cacert gets a file, a 1 MiB file across 16 KiB records on the same connection, HEAD", arguments: httpModes + ["async"])
    func https(mode: String) throws {
        let certificates = try Certificates()
        defer { certificates.cleanup() }
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        try withDemo(["http", "--mode", mode, "--port", "0", "--directory", fixture.root] + certificates.serverArguments) { demo in
            let base = "https://localhost:\(demo.port)"
            let small = certificates.file("small.out")
            let large = certificates.file("large.out")
            let got = try runTool([
                "/usr/bin/curl", "-sS", "-v", "--cacert", certificates.file("ca.pem"),
                "\(base)/hello.txt", "-o", small, "\(base)/large.bin", "-o", large,
            ])
            #expect(got.status == 0, "\(got.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: small)) == Data("hello\n".utf8))
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: large))) == (try fixture.contents("large.bin")))
            if mode != "sync" {
                #expect(got.stderr.contains("Re-using existing connection"), "\(got.stderr)")
            }
            let head = try runTool(["/usr/bin/curl", "-sS", "-I", "--cacert", certificates.file("ca.pem"), "\(base)/hello.txt"])
            #expect(head.output.hasPrefix("HTTP/1.1 200"), "\(head.output) \(head.stderr)")
            #expect(head.output.lowercased().contains("content-length: 6"))
            // Plain HTTP on the TLS port is refused; the server keeps serving.
            let plain = try runTool(["/usr/bin/curl", "-sS", "--max-time", "10", "http://localhost:\(demo.port)/hello.txt"])
            #expect(plain.status != 0)
            let again = try runTool(["/usr/bin/curl", "-sS", "--cacert", certificates.file("ca.pem"), "\(base)/hello.txt"])
            #expect(again.output == "hello\n")
        }
    }

    @Test(
        "https: a 12 MiB file, three times event mode's 4 MiB output limit, arrives whole over TLS (read and encrypted a chunk at a time as the socket drains)",
        arguments: ["threading", "event", "async"])
    func httpsFileBeyondOutputLimit(mode: String) throws {
        let certificates = try Certificates()
        defer { certificates.cleanup() }
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        let random = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
        let chunk = try random.read(upToCount: 1 << 20) ?? Data()
        try random.close()
        let big = Data((0..<12).flatMap { _ in chunk })
        try big.write(to: URL(fileURLWithPath: fixture.root + "/big.bin"))
        try withDemo(["http", "--mode", mode, "--port", "0", "--directory", fixture.root] + certificates.serverArguments) { demo in
            let output = certificates.file("big.out")
            // Twice on one connection: the second response follows the first file's last encrypted chunk.
            let got = try runTool([
                "/usr/bin/curl", "-sS", "-f", "--cacert", certificates.file("ca.pem"), "--max-time", "120",
                "-w", " %{http_code} %{size_download}\n",
                "https://localhost:\(demo.port)/big.bin", "-o", output, "https://localhost:\(demo.port)/hello.txt",
            ])
            #expect(got.status == 0, "\(got.stderr)")
            #expect(got.output == " 200 \(big.count)\nhello\n 200 6\n", "\(got.output) \(got.stderr)")
            func expectWhole() throws {
                let received = try Data(contentsOf: URL(fileURLWithPath: output))
                if received != big {
                    let firstDifference = zip(received, big).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                    Issue.record("\(received.count) bytes received, first difference at \(String(describing: firstDifference))")
                }
            }
            try expectWhole()
            // A reader slower than the server (curl --limit-rate): the socket fills, so chunks leave in parts
            // and the rest waits in the queue, the last chunk's included, before the next response.
            let slow = try runTool([
                "/usr/bin/curl", "-sS", "-f", "--cacert", certificates.file("ca.pem"), "--max-time", "120",
                "--limit-rate", "12M", "-w", " %{http_code} %{size_download}\n",
                "https://localhost:\(demo.port)/big.bin", "-o", output, "https://localhost:\(demo.port)/hello.txt",
            ])
            #expect(slow.status == 0, "\(slow.stderr)")
            #expect(slow.output == " 200 \(big.count)\nhello\n 200 6\n", "\(slow.output) \(slow.stderr)")
            try expectWhole()
        }
    }

    @Test("echo over TLS with a client certificate required, and a SIGHUP reload", arguments: ["threading", "event"])
    func echoMutualAndReload(mode: String) throws {
        let certificates = try Certificates()
        defer { certificates.cleanup() }
        let certificate = certificates.file("live.pem")
        let key = certificates.file("live.key")
        try FileManager.default.copyItem(atPath: certificates.file("server.pem"), toPath: certificate)
        try FileManager.default.copyItem(atPath: certificates.file("server.key"), toPath: key)
        let arguments = [
            "echo", "--mode", mode, "--port", "0", "--log-level", "info", "--tls-cert", certificate, "--tls-key", key,
            "--tls-client-ca", certificates.file("ca.pem"),
        ]
        try withDemo(arguments) { demo in
            func sClient(_ extra: [String]) throws -> ToolResult {
                try runTool(
                    ["/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:\(demo.port)", "-CAfile",
                     certificates.file("ca.pem"), "-verify_return_error", "-no_ign_eof"] + extra,
                    input: Array("hello\n".utf8))
            }
            let client = ["-cert", certificates.file("client.pem"), "-key", certificates.file("client.key")]
            let served = try sClient(client)
            #expect(served.output.contains("subject=CN = localhost"), "\(served.output)")
            let anonymous = try sClient([])
            #expect(!anonymous.output.contains("\nhello\n"))
            #expect(demo.waitForLog("TLS handshake failed"))
            _ = rename(certificates.file("renewed.pem"), certificate)
            _ = rename(certificates.file("renewed.key"), key)
            demo.send(SIGHUP)
            #expect(demo.waitForLog("TLS certificates reloaded"))
            let renewed = try sClient(client)
            #expect(renewed.output.contains("O = Renewed"), "\(renewed.output)")
        }
    }

    @Test("echo --unix --allow-uid serves only that user")
    func allowUID() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        for (uid, served) in [(getuid(), true), (getuid() &+ 4242, false)] {
            let path = directory.path + "/echo-\(uid).sock"
            try withDemo(["echo", "--unix", path, "--allow-uid", "\(uid)", "--log-level", "info"]) { demo in
                let client = try TestClient(connectingTo: try demo.socketAddress())
                defer { client.close() }
                try client.send("who\n")
                try client.socket.shutdown(.write)
                let reply = (try? client.readToEnd()) ?? ""  // a refused client may see a reset
                #expect((reply == "who\n") == served, "\(reply)")
                if !served { #expect(demo.waitForLog("refused a client of another user")) }
            }
        }
    }
}
