import Glibc

/// The nginx peer's configuration file, written once for both the plain and the TLS workloads.
enum NginxConfiguration {
    /// Writes `prefix/nginx.conf` and returns the prefix and the file: one process (`master_process off`, so
    /// the one worker is the process the harness measures), `sendfile on`, keep-alive without a request limit,
    /// the access log to `accessLog`, temporary paths under `prefix`; with `tls`, that certificate and key,
    /// TLS 1.2 and 1.3, `ssl_session_cache off` and `ssl_session_tickets off` (every connection a full
    /// handshake).
    static func write(
        prefix: String, accessLog: String, documentRoot: String, port: Int,
        tls: (certificate: String, key: String)? = nil
    ) -> (prefix: String, file: String) {
        mkdir(prefix, 0o755)
        let file = "\(prefix)/nginx.conf"
        let tlsLines = tls.map { tls in
            """
                ssl_certificate \(tls.certificate);
                ssl_certificate_key \(tls.key);
                ssl_protocols TLSv1.2 TLSv1.3;
                ssl_session_cache off;
                ssl_session_tickets off;

            """
        } ?? ""
        let text = """
            daemon off;
            master_process off;
            worker_processes 1;
            pid \(prefix)/nginx.pid;
            error_log \(prefix)/error.log error;
            events { worker_connections 16384; }
            http {
                access_log \(accessLog);
                sendfile on;
                tcp_nopush on;
                keepalive_timeout 65;
                keepalive_requests 100000000;
                client_body_temp_path \(prefix)/body;
                proxy_temp_path \(prefix)/proxy;
                fastcgi_temp_path \(prefix)/fastcgi;
                uwsgi_temp_path \(prefix)/uwsgi;
                scgi_temp_path \(prefix)/scgi;
                types { application/octet-stream bin; }
            \(tlsLines)    server {
                    listen 127.0.0.1:\(port)\(tls == nil ? "" : " ssl") backlog=4096;
                    root \(documentRoot);
                }
            }

            """
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd >= 0 {
            _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
            close(fd)
        }
        return (prefix, file)
    }
}
