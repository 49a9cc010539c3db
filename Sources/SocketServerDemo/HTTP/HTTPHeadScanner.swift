import SocketServer

/// Finds a complete request head in bytes that arrive piecemeal (the event-mode handler's input).
///
/// Applies the parser's limits before the head is complete, so a client cannot make the server buffer an
/// endless request line (414) or endless header fields (431).
enum HTTPHeadScanner {
    /// What the buffered bytes hold so far.
    enum Outcome: Equatable {
        /// A complete head: its length, through the empty line.
        case complete(length: Int)
        /// Not complete yet, and still within the limits.
        case incomplete
        /// Already over a limit.
        case tooLarge(HTTPParseError)
    }

    /// Looks for the empty line (`\n\n` or `\n\r\n`) that ends a head in `bytes`.
    static func scan(_ bytes: UnsafeRawBufferPointer, parser: HTTPRequestParser) -> Outcome {
        var lineStart = 0
        var sawRequestLine = false
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                let line = index - lineStart
                let isEmpty = line == 0 || (line == 1 && bytes[lineStart] == UInt8(ascii: "\r"))
                if isEmpty && sawRequestLine { return .complete(length: index + 1) }
                if !isEmpty {
                    sawRequestLine = true
                }
                lineStart = index + 1
            }
            index += 1
        }
        if !sawRequestLine && bytes.count - lineStart > parser.maxRequestLineLength {
            return .tooLarge(.uriTooLong(limit: parser.maxRequestLineLength))
        }
        if bytes.count > parser.maxRequestLineLength + parser.maxHeaderBytes {
            return .tooLarge(.headerFieldsTooLarge("more than \(parser.maxHeaderBytes) bytes of header fields"))
        }
        return .incomplete
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
