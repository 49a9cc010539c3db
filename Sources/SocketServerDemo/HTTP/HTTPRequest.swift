/// An HTTP version from a request line, `HTTP/1.1` for example.
struct HTTPVersion: Equatable, Sendable, CustomStringConvertible {
    let major: Int
    let minor: Int

    static let http1_0 = HTTPVersion(major: 1, minor: 0)
    static let http1_1 = HTTPVersion(major: 1, minor: 1)

    var description: String { "HTTP/\(major).\(minor)" }
}

/// How the request's body, if any, is delimited.
enum HTTPBodyFraming: Equatable {
    /// No body.
    case none
    /// `Content-Length` bytes follow the headers.
    case length(Int)
    /// `Transfer-Encoding` is present: a body of unknown length that this server does not read.
    case unsupported
}

/// A parsed request head: request line and header fields.
struct HTTPRequest {
    /// The method, case-sensitive as sent (`GET`, `HEAD`, ...).
    let method: String
    /// The request target exactly as sent: printable ASCII, still percent-encoded.
    let target: [UInt8]
    /// The protocol version.
    let version: HTTPVersion
    /// The header fields in order, names lowercased, values trimmed.
    let headers: [(name: String, value: String)]

    /// The first value of the field `name` (lowercase), if present.
    func value(of name: String) -> String? {
        headers.first { $0.name == name }?.value
    }

    /// Every value of the field `name` (lowercase), with comma-separated lists split and trimmed.
    func listValues(of name: String) -> [String] {
        headers.filter { $0.name == name }.flatMap { field in
            field.value.split(separator: ",").map { $0.trimmingASCIISpaces().lowercased() }
        }
    }

    /// Whether the client asks to keep the connection open: HTTP/1.1 unless `Connection: close`, HTTP/1.0
    /// only with `Connection: keep-alive`.
    var wantsKeepAlive: Bool {
        let options = listValues(of: "connection")
        if options.contains("close") { return false }
        return version == .http1_0 ? options.contains("keep-alive") : true
    }

    /// `GET /path HTTP/1.1`, for the log.
    var requestLine: String {
        "\(method) \(String(decoding: target, as: UTF8.self)) \(version)"
    }

    /// The body framing announced by the headers.
    /// - Throws: `HTTPParseError.badRequest` for an invalid or conflicting `Content-Length`, or one next to
    ///   `Transfer-Encoding` (the classic request-smuggling ambiguity).
    func bodyFraming() throws(HTTPParseError) -> HTTPBodyFraming {
        let lengths = listValues(of: "content-length")
        let hasTransferEncoding = headers.contains { $0.name == "transfer-encoding" }
        if hasTransferEncoding {
            guard lengths.isEmpty else { throw .badRequest("both Content-Length and Transfer-Encoding") }
            return .unsupported
        }
        guard let first = lengths.first else { return .none }
        guard lengths.allSatisfy({ $0 == first }), first.utf8.count <= 18,
            first.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }), let length = Int(first)
        else { throw .badRequest("invalid Content-Length") }
        return length == 0 ? .none : .length(length)
    }
}

extension Substring {
    /// The text without leading and trailing spaces and tabs.
    func trimmingASCIISpaces() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return self[start...end]
    }
}
