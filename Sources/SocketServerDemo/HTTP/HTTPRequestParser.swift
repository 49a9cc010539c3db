import SocketServer

/// Reads one request head (request line and header fields) with bounded memory.
///
/// The request line may be `maxRequestLineLength` bytes (414 beyond), each header line
/// `maxHeaderLineLength` bytes and all of them `maxHeaderBytes` bytes in at most `maxHeaderCount` fields (431
/// beyond). Lines end in CRLF or a bare LF; up to a few empty lines before the request line are skipped, as
/// RFC 9112 recommends. Obsolete line folding, a bare CR, control characters and spaces before the colon
/// are rejected (400), because proxies disagree about them.
struct HTTPRequestParser {
    var maxRequestLineLength = 8192
    var maxHeaderLineLength = 8192
    var maxHeaderBytes = 65536
    var maxHeaderCount = 100

    /// Where the parser gets its lines: `nextLine(maxLength, isFirst)` returns one line with its newline,
    /// an empty array at end of file, or nil to stop waiting (only when `isFirst`, before any byte of the
    /// request). It throws `SocketServerError.lineTooLong` for a line over `maxLength`.
    typealias LineSource = (_ maxLength: Int, _ isFirst: Bool) throws -> [UInt8]?

    /// Parses the next request head.
    /// - Returns: the request, or nil when the client closed (or the source stopped) between requests.
    /// - Throws: `HTTPParseError` for a head that cannot be served; errors of the line source otherwise.
    func parse(_ nextLine: LineSource) throws -> HTTPRequest? {
        var requestLine: [UInt8] = []
        for _ in 0..<4 {
            let line: [UInt8]?
            do {
                line = try nextLine(maxRequestLineLength, true)
            } catch SocketServerError.lineTooLong {
                throw HTTPParseError.uriTooLong(limit: maxRequestLineLength)
            }
            guard let line, !line.isEmpty else { return nil }
            guard line.last == UInt8(ascii: "\n") else { throw HTTPParseError.incomplete }
            requestLine = Self.strippingNewline(line)
            if !requestLine.isEmpty { break }
        }
        guard !requestLine.isEmpty else { throw HTTPParseError.badRequest("no request line") }
        let (method, target, version) = try Self.parseRequestLine(requestLine)
        return HTTPRequest(method: method, target: target, version: version, headers: try parseHeaders(nextLine))
    }

    private func parseHeaders(_ nextLine: LineSource) throws -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        var totalBytes = 0
        while true {
            let line: [UInt8]
            do {
                guard let next = try nextLine(maxHeaderLineLength, false) else { throw HTTPParseError.incomplete }
                line = next
            } catch SocketServerError.lineTooLong {
                throw HTTPParseError.headerFieldsTooLarge("a header line is longer than \(maxHeaderLineLength) bytes")
            }
            guard !line.isEmpty, line.last == UInt8(ascii: "\n") else { throw HTTPParseError.incomplete }
            let field = Self.strippingNewline(line)
            if field.isEmpty { return headers }
            totalBytes += line.count
            guard totalBytes <= maxHeaderBytes else {
                throw HTTPParseError.headerFieldsTooLarge("more than \(maxHeaderBytes) bytes of header fields")
            }
            guard headers.count < maxHeaderCount else {
                throw HTTPParseError.headerFieldsTooLarge("more than \(maxHeaderCount) header fields")
            }
            headers.append(try Self.parseField(field))
        }
    }

    /// `METHOD SP target SP HTTP/x.y`, with single spaces (the line without its newline).
    /// - Throws: `HTTPParseError.badRequest`, or `.versionNotSupported` for a version other than 1.x.
    static func parseRequestLine(_ line: [UInt8]) throws(HTTPParseError) -> (String, [UInt8], HTTPVersion) {
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw HTTPParseError.badRequest("malformed request line") }
        let method = parts[0]
        let target = parts[1]
        guard !method.isEmpty, method.allSatisfy(isTokenByte) else {
            throw HTTPParseError.badRequest("invalid method")
        }
        guard !target.isEmpty, target.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw HTTPParseError.badRequest("invalid request target")
        }
        return (String(decoding: method, as: UTF8.self), Array(target), try parseVersion(parts[2]))
    }

    private static func parseVersion(_ text: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPVersion {
        let bytes = Array(text)
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        guard bytes.count == 8, bytes.starts(with: Array("HTTP/".utf8)), digits.contains(bytes[5]),
            bytes[6] == UInt8(ascii: "."), digits.contains(bytes[7])
        else { throw HTTPParseError.badRequest("invalid HTTP version") }
        let version = HTTPVersion(major: Int(bytes[5] - digits.lowerBound), minor: Int(bytes[7] - digits.lowerBound))
        guard version.major == 1 else { throw HTTPParseError.versionNotSupported }
        return version
    }

    /// `name: value`, name a token directly followed by the colon; value without surrounding blanks.
    private static func parseField(_ line: [UInt8]) throws -> (name: String, value: String) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
            throw HTTPParseError.badRequest(
                line.first == UInt8(ascii: " ") || line.first == UInt8(ascii: "\t")
                    ? "obsolete header line folding" : "header line without a field name")
        }
        let name = line[..<colon]
        guard name.allSatisfy(isTokenByte) else { throw HTTPParseError.badRequest("invalid header field name") }
        let value = line[(colon + 1)...]
        guard value.allSatisfy({ $0 == 0x09 || $0 >= 0x20 && $0 != 0x7F }) else {
            throw HTTPParseError.badRequest("control character in a header field value")
        }
        let text = String(decoding: value, as: UTF8.self)[...].trimmingASCIISpaces()
        return (String(decoding: name, as: UTF8.self).lowercased(), String(text))
    }

    /// The line without its LF or CRLF.
    private static func strippingNewline(_ line: [UInt8]) -> [UInt8] {
        var end = line.endIndex
        if end > 0, line[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        if end > 0, line[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return Array(line[..<end])
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}
