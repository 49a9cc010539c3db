import Glibc

/// The answer to one request: a head and where its body comes from.
struct StaticResponse {
    /// Status and fields, `Content-Length` included.
    var head: HTTPResponseHead
    /// The body: bytes in memory (pages) or an open file.
    var body: Body

    enum Body {
        case bytes([UInt8])
        /// `length` bytes of `file` from `offset`, sent with `sendfile(2)`.
        case file(StaticFile, offset: Int, length: Int)
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
///
/// Besides GET and HEAD of files, listings and redirects: conditional requests (`If-None-Match` with the
/// file's entity tag, else `If-Modified-Since` → 304), a single byte range (`Range`, honouring `If-Range`
/// → 206, or 416 past the end), 400 for a missing or repeated `Host` (RFC 9112, section 3.2), and 503 with
/// `Retry-After` when the server has no descriptor or memory left to open the file (never a 404 for a file
/// that exists).
enum StaticFileResponder {
    /// GET and HEAD of a file, a listing or a redirect; 304, 206, 400, 404, 405, 416 or 503 otherwise.
    static func response(to request: HTTPRequest, settings: HTTPSettings) -> StaticResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return .page(
                .methodNotAllowed, detail: "This server only answers GET and HEAD.", fields: [("Allow", "GET, HEAD")])
        }
        let hosts = request.headers.count { $0.name == "host" }
        if hosts > 1 {
            return .page(.badRequest, detail: "A request may have only one Host header.")
        }
        if request.version == .http1_1 && hosts == 0 {
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
            var failure: Int32 = 0
            guard let listing = DirectoryListing.render(directory: path, urlPath: urlPath, failure: &failure) else {
                return StaticFile.isResourceExhaustion(failure) ? unavailable : notFound
            }
            return .html(.ok, listing)
        case .file(let path, let name):
            switch StaticFile.open(path, within: settings.resolver) {
            case .opened(let file): return fileResponse(file, name: name, request: request)
            case .notFound: return notFound
            case .unavailable: return unavailable
            }
        }
    }

    /// 200, 206, 304 or 416 for an opened file.
    private static func fileResponse(_ file: StaticFile, name: [UInt8], request: HTTPRequest) -> StaticResponse {
        let entityTag = file.entityTag
        let lastModified = HTTPDate.format(file.modified)
        if isNotModified(request, entityTag: entityTag, modified: file.modified) {
            var head = HTTPResponseHead(status: .notModified)
            head.add("ETag", entityTag)
            head.add("Last-Modified", lastModified)
            return StaticResponse(head: head, body: .bytes([]))
        }
        var status = HTTPStatus.ok
        var offset = 0
        var length = file.size
        var contentRange: String?
        if let field = request.value(of: "range"), rangeApplies(request, entityTag: entityTag, lastModified: lastModified) {
            switch ByteRange.parse(field, size: file.size) {
            case .satisfiable(let start, let count):
                (status, offset, length) = (.partialContent, start, count)
                contentRange = "bytes \(start)-\(start + count - 1)/\(file.size)"
            case .unsatisfiable:
                return .page(
                    .rangeNotSatisfiable, detail: "The requested range is not in the file.",
                    fields: [("Content-Range", "bytes */\(file.size)")])
            case .ignored:
                break
            }
        }
        var head = HTTPResponseHead(status: status)
        head.add("Content-Type", MIMETypes.type(forFileName: name))
        head.add("Content-Length", "\(length)")
        head.add("Last-Modified", lastModified)
        head.add("ETag", entityTag)
        head.add("Accept-Ranges", "bytes")
        if let contentRange { head.add("Content-Range", contentRange) }
        return StaticResponse(head: head, body: .file(file, offset: offset, length: length))
    }

    /// RFC 9110, section 13.2.2: `If-None-Match` decides when present (weak comparison, `*` matches any),
    /// else `If-Modified-Since` (the file is not newer than the date).
    private static func isNotModified(_ request: HTTPRequest, entityTag: String, modified: time_t) -> Bool {
        if request.value(of: "if-none-match") != nil {
            let tags = request.headers.filter { $0.name == "if-none-match" }.flatMap { field in
                field.value.split(separator: ",").map { String($0.trimmingASCIISpaces()) }
            }
            let strip: (String) -> Substring = { $0.hasPrefix("W/") ? $0.dropFirst(2) : $0[...] }
            return tags.contains { $0 == "*" || strip($0) == strip(entityTag) }
        }
        guard let field = request.value(of: "if-modified-since"), let date = HTTPDate.parse(field) else { return false }
        return modified <= date
    }

    /// `If-Range` (RFC 9110, section 13.1.5): the range applies only if the validator still matches (a
    /// strong entity tag, or exactly the `Last-Modified` date); without the field it always applies.
    private static func rangeApplies(_ request: HTTPRequest, entityTag: String, lastModified: String) -> Bool {
        guard let validator = request.value(of: "if-range") else { return true }
        if validator.hasPrefix("\"") || validator.hasPrefix("W/") { return validator == entityTag }
        return validator == lastModified
    }

    private static var notFound: StaticResponse {
        .page(.notFound, detail: "File not found.")
    }

    /// Out of descriptors or memory: the client may try again shortly.
    private static var unavailable: StaticResponse {
        .page(
            .serviceUnavailable, detail: "The server is busy; try again shortly.", fields: [("Retry-After", "1")])
    }
}
