import Glibc

/// What the TLS workloads share: an ECDSA P-256 certificate and key generated with `openssl req` at the start of
/// every run (never committed), the 64 MiB bulk file, and nginx's TLS configuration (same certificate, one
/// worker, no session cache and no tickets, so that every connection is a full handshake for both servers).
struct TLSFiles: Sendable {
    let certificate: String
    let key: String

    /// Generates a fresh certificate for `localhost` and 127.0.0.1 under `outDirectory/tls`, and the 64 MiB file
    /// in `documentRoot`; nil (the TLS workloads then skip every server) when openssl is missing or fails.
    static func make(outDirectory: String, documentRoot: String, progress: Progress) -> TLSFiles? {
        let directory = "\(outDirectory)/tls"
        mkdir(directory, 0o755)
        mkdir(documentRoot, 0o755)
        let files = TLSFiles(certificate: "\(directory)/cert.pem", key: "\(directory)/key.pem")
        guard let openssl = PeerTools.which("openssl") else {
            progress.note("openssl not found: the TLS workloads are skipped")
            return nil
        }
        let arguments = [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", files.key, "-out", files.certificate, "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ]
        guard let child = try? ChildProcess(
            arguments: arguments, stdoutPath: "\(directory)/openssl.log", stderrPath: "\(directory)/openssl.log"),
            child.wait(timeout: 60) == 0
        else {
            progress.note("openssl req failed (see \(directory)/openssl.log): the TLS workloads are skipped")
            return nil
        }
        writeFile("\(documentRoot)/64m.bin", size: 64 << 20)
        return files
    }

    /// A file of `size` bytes, rewritten only when missing or of another size.
    private static func writeFile(_ path: String, size: Int) {
        var info = stat()
        if stat(path, &info) == 0 && Int(info.st_size) == size { return }
        let chunk = [UInt8](repeating: UInt8(ascii: "t"), count: 1 << 20)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        for _ in 0..<(size >> 20) { _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
    }

    /// Writes nginx's HTTPS configuration for `documentRoot` on 127.0.0.1:`port` (under `outDirectory/nginx-tls`)
    /// and returns its prefix directory and file: as the plain one (one process, keep-alive, access log to a file)
    /// plus this certificate, TLS 1.2 and 1.3, `ssl_session_cache off` and `ssl_session_tickets off`.
    func nginxConfiguration(outDirectory: String, logDirectory: String)
        -> @Sendable (_ documentRoot: String, _ port: Int) -> (prefix: String, file: String)
    {
        let prefix = "\(outDirectory)/nginx-tls"
        let certificate = certificate
        let key = key
        return { documentRoot, port in
            NginxConfiguration.write(
                prefix: prefix, accessLog: "\(logDirectory)/nginx-tls-access.log", documentRoot: documentRoot,
                port: port, tls: (certificate, key))
        }
    }
}
