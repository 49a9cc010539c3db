/// The answer to one request: a head and where its body comes from.
struct StaticResponse {
    /// Status and fields, `Content-Length` included.
    var head: HTTPResponseHead
    /// The body: bytes in memory (pages) or an open file.
    var body: Body

    enum Body {
        case bytes([UInt8])
        case file(StaticFile)
    }

    /// An HTML page for `status` (errors, redirects) with `Content-Type` and `Content-Length` set.
    static func page(_ status: HTTPStatus, detail: String, fields: [(String, String)] = []) -> StaticResponse {
        html(status, StatusPage.body(for: status, detail: detail), fields: fields)
    }

    /// `bytes` as `text/html` with `status`.
    static func html(_ status: HTTPStatus, _ bytes: [UInt8], fields: [(String, String)] = []) -> StaticResponse {
        var head = HTTPResponseHead(status: status)
        for (name, value) in fields { head.add(name, value) }
        head.add("Content-Type", "text/html; charset=utf-8")
        head.add("Content-Length", "\(bytes.count)")
        return StaticResponse(head: head, body: .bytes(bytes))
    }
}

/// Decides the response to a well-formed request for the static file service.
enum StaticFileResponder {
    /// GET and HEAD of a file, a listing or a redirect; 400, 404 or 405 otherwise.
    static func response(to request: HTTPRequest, settings: HTTPSettings) -> StaticResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return .page(
                .methodNotAllowed, detail: "This server only answers GET and HEAD.", fields: [("Allow", "GET, HEAD")])
        }
        if request.version == .http1_1 && request.value(of: "host") == nil {
            return .page(.badRequest, detail: "An HTTP/1.1 request needs a Host header.")
        }
        switch settings.resolver.resolve(request.target) {
        case .badRequest(let reason):
            return .page(.badRequest, detail: "Bad request: \(reason).")
        case .notFound:
            return notFound
        case .redirect(let location):
            return .page(.movedPermanently, detail: "Moved to \(location).", fields: [("Location", location)])
        case .directory(let path, let urlPath):
            guard let listing = DirectoryListing.render(directory: path, urlPath: urlPath) else { return notFound }
            return .html(.ok, listing)
        case .file(let path, let name):
            guard let file = StaticFile.open(path, within: settings.resolver) else { return notFound }
            var head = HTTPResponseHead(status: .ok)
            head.add("Content-Type", MIMETypes.type(forFileName: name))
            head.add("Content-Length", "\(file.size)")
            head.add("Last-Modified", HTTPDate.format(file.modified))
            return StaticResponse(head: head, body: .file(file))
        }
    }

    private static var notFound: StaticResponse {
        .page(.notFound, detail: "File not found.")
    }
}
