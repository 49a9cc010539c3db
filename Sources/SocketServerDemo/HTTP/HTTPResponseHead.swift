/// A response's status line and header fields, serialised in one piece.
///
/// `Server`, `Date` and `Connection` are added by `serialized(keepAlive:)`; the caller adds the rest
/// (`Content-Type`, `Content-Length`, ...). Field values come from this server, never from the request,
/// except `Location`, whose request bytes were checked to be printable ASCII.
struct HTTPResponseHead {
    /// The status.
    var status: HTTPStatus
    private var fields: [(name: String, value: String)] = []

    init(status: HTTPStatus) {
        self.status = status
    }

    /// Adds a header field.
    mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    /// The head as sent: `HTTP/1.1 200 OK`, the fields, `Connection`, and the empty line.
    func serialized(keepAlive: Bool) -> [UInt8] {
        var text = "HTTP/1.1 \(status.code) \(status.reason)\r\nServer: socketserver-demo\r\n"
        text += "Date: \(HTTPDate.now())\r\n"
        for field in fields { text += "\(field.name): \(field.value)\r\n" }
        text += keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n"
        return Array(text.utf8)
    }
}

/// The small HTML page sent with every error and redirect.
enum StatusPage {
    /// A page naming the status and explaining it with `detail`.
    static func body(for status: HTTPStatus, detail: String) -> [UInt8] {
        let page = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>\(status.code) \(HTMLEscaping.escape(status.reason))</title>
            </head>
            <body>
            <h1>\(status.code) \(HTMLEscaping.escape(status.reason))</h1>
            <p>\(HTMLEscaping.escape(detail))</p>
            </body>
            </html>

            """
        return Array(page.utf8)
    }
}
