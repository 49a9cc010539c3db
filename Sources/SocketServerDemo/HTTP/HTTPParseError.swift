/// Why a request head could not be accepted, and the status that says so.
enum HTTPParseError: Error, Equatable {
    /// Malformed syntax: 400.
    case badRequest(String)
    /// The request line is longer than the limit: 414.
    case uriTooLong(limit: Int)
    /// A header line, or all of them together, exceed the limits: 431.
    case headerFieldsTooLarge(String)
    /// A protocol version other than HTTP/1.x: 505.
    case versionNotSupported
    /// The client closed in the middle of the head: no response is possible.
    case incomplete

    /// The response status; nil when no response can be sent.
    var status: HTTPStatus? {
        switch self {
        case .badRequest: .badRequest
        case .uriTooLong: .uriTooLong
        case .headerFieldsTooLarge: .headerFieldsTooLarge
        case .versionNotSupported: .versionNotSupported
        case .incomplete: nil
        }
    }

    /// A sentence for the error page and the log.
    var detail: String {
        switch self {
        case .badRequest(let reason): "Bad request: \(reason)."
        case .uriTooLong(let limit): "The request line is longer than \(limit) bytes."
        case .headerFieldsTooLarge(let reason): "Request header fields too large: \(reason)."
        case .versionNotSupported: "Only HTTP/1.0 and HTTP/1.1 are supported."
        case .incomplete: "The client closed the connection in the middle of a request."
        }
    }
}
