import SocketServer

/// Finds a complete request head in bytes that arrive piecemeal (the event-mode handler's input).
///
/// Applies the parser's limits before the head is complete, so a client cannot make the server buffer an
/// endless request line (414) or endless header fields (431); and rejects a malformed request line (400) as
/// soon as it is complete, or as soon as a byte arrives that no request line may hold, instead of waiting
/// for the rest of a head that may never come.
enum HTTPHeadScanner {
    /// What the buffered bytes hold so far.
    enum Outcome: Equatable {
        /// A complete head: its length, through the empty line.
        case complete(length: Int)
        /// Not complete yet, and still within the limits.
        case incomplete
        /// Already over a limit, or the request line is malformed: answer with the error's status.
        case rejected(HTTPParseError)
    }

    /// Looks for the empty line (`\n\n` or `\n\r\n`) that ends a head in `bytes`.
    static func scan(_ bytes: UnsafeRawBufferPointer, parser: HTTPRequestParser) -> Outcome {
        var lineStart = 0
        var requestLine: Range<Int>?
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                let line = index - lineStart
                let isEmpty = line == 0 || (line == 1 && bytes[lineStart] == UInt8(ascii: "\r"))
                if isEmpty && requestLine != nil { return .complete(length: index + 1) }
                if !isEmpty && requestLine == nil {
                    requestLine = lineStart..<index
                }
                lineStart = index + 1
            }
            index += 1
        }
        if let requestLine, requestLine.count >= parser.maxRequestLineLength {
            return .rejected(.uriTooLong(limit: parser.maxRequestLineLength))
        }
        if let requestLine {
            // Complete but malformed: the parser would answer 400 (or 505) once the head is complete.
            var line = Array(UnsafeRawBufferPointer(rebasing: bytes[requestLine]))
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            do {
                _ = try HTTPRequestParser.parseRequestLine(line)
            } catch {
                return .rejected(error)
            }
        } else if !isPlausibleRequestLine(UnsafeRawBufferPointer(rebasing: bytes[lineStart...])) {
            return .rejected(.badRequest("malformed request line"))
        }
        if requestLine == nil && bytes.count - lineStart > parser.maxRequestLineLength {
            return .rejected(.uriTooLong(limit: parser.maxRequestLineLength))
        }
        if bytes.count > parser.maxRequestLineLength + parser.maxHeaderBytes {
            return .rejected(.headerFieldsTooLarge("more than \(parser.maxHeaderBytes) bytes of header fields"))
        }
        return .incomplete
    }

    /// Whether the start of a request line could still become a valid one: printable ASCII and spaces,
    /// with a carriage return only as its last byte so far.
    private static func isPlausibleRequestLine(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for (offset, byte) in bytes.enumerated() {
            if byte == UInt8(ascii: "\r") && offset == bytes.count - 1 { continue }
            if byte < 0x20 || byte > 0x7E { return false }
        }
        return true
    }

    /// Parses a complete head held in memory.
    static func parse(_ head: [UInt8], parser: HTTPRequestParser) throws -> HTTPRequest? {
        var offset = 0
        return try parser.parse { maxLength, _ in
            guard offset < head.count else { return [] }
            let end = head[offset...].firstIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? head.count
            guard end - offset <= maxLength else { throw SocketServerError.lineTooLong(limit: maxLength) }
            defer { offset = end }
            return Array(head[offset..<end])
        }
    }
}
