import ArgumentParser
import Glibc
import Logging
import SocketServer
import SocketServerTLS

/// `--tls-cert`, `--tls-key`, `--tls-password-file`, `--tls-client-ca`: serve the stream services over TLS in
/// every mode, reloading the certificate files on SIGHUP.
struct TLSOptions: ParsableArguments {
    @Option(
        name: .customLong("tls-cert"),
        help: ArgumentHelp("Serve TLS with this PEM certificate chain (server certificate first).", valueName: "path"))
    var certificate: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The PEM private key of --tls-cert.", valueName: "path"))
    var key: String?

    @Option(
        name: .customLong("tls-password-file"),
        help: ArgumentHelp("A file whose first line decrypts an encrypted --tls-key.", valueName: "path"))
    var passwordFile: String?

    @Option(
        name: .customLong("tls-client-ca"),
        help: ArgumentHelp(
            "Mutual TLS: only clients with a certificate from the CAs in this PEM file are served.", valueName: "path"))
    var clientCA: String?

    mutating func validate() throws {
        if (certificate == nil) != (key == nil) {
            throw ValidationError("--tls-cert and --tls-key go together.")
        }
        if certificate == nil, passwordFile != nil || clientCA != nil {
            throw ValidationError("--tls-password-file and --tls-client-ca need --tls-cert and --tls-key.")
        }
    }

    /// Whether TLS was asked for.
    var isEnabled: Bool { certificate != nil }

    /// Masks SIGHUP when TLS is on, so that `serve(_:logger:)` can take it with `sigwait`. Call first thing,
    /// before any thread exists (next to `ShutdownSignals.block()`).
    func blockReloadSignal() {
        guard isEnabled else { return }
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGHUP)
        _ = pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Loads the certificates and makes `server` serve TLS; SIGHUP then reloads them (a bad file is logged
    /// and the previous certificates stay). Does nothing without `--tls-cert`.
    /// - Throws: `ValidationError` naming the file OpenSSL could not use.
    func apply(to server: TCPServer) throws {
        guard let certificate, let key else { return }
        let configuration = TLSConfiguration(
            certificate: .files(certificateChain: certificate, privateKey: key, passwordFile: passwordFile),
            alpn: ["http/1.1"],
            clientAuthentication: clientCA.map { .required(trustedCAFile: $0) } ?? .none)
        let context: TLSContext
        do {
            context = try TLSContext(configuration)
        } catch {
            throw ValidationError("\(error)")
        }
        server.useTLS(context)
        _ = try OSThread(detached: true) {
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGHUP)
            var received: Int32 = 0
            while sigwait(&set, &received) == 0 {
                server.reloadCertificates()
            }
        }
    }
}
