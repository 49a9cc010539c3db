import Glibc

/// A system call on a socket failed: which call, and the `errno` it left.
///
/// Python raises `OSError` subclasses (`ConnectionResetError`, `TimeoutError`, ...) in the same places; the
/// `code` says which one it would have been. A receive or send that ran past the socket's `timeout` has
/// `code == ETIMEDOUT` and `isTimeout == true`.
public struct SocketError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The call that failed, for example `"accept"` or `"bind"`.
    public let operation: String
    /// The `errno` value, for example `ECONNRESET`.
    public let code: Int32

    /// Records a failed `operation` with the `errno` value `code`.
    public init(operation: String, code: Int32) {
        self.operation = operation
        self.code = code
    }

    /// Captures the current `errno` for `operation`.
    static func lastError(_ operation: String) -> SocketError {
        SocketError(operation: operation, code: errno)
    }

    /// Whether the operation ran past the socket's timeout.
    public var isTimeout: Bool { code == ETIMEDOUT }

    /// Whether the peer went away (reset, broken pipe, not connected).
    public var isDisconnect: Bool {
        code == ECONNRESET || code == EPIPE || code == ENOTCONN || code == ECONNABORTED
    }

    /// Whether the process or system ran out of descriptors or buffers (accept should back off, not spin).
    public var isResourceExhaustion: Bool {
        code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM
    }

    /// `"operation: message (errno N)"`.
    public var description: String {
        "\(operation): \(String(cString: strerror(code))) (errno \(code))"
    }
}

/// Errors of SocketServer's own making, as opposed to a failed system call.
public enum SocketServerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `readLine` saw no newline within `limit` bytes; the line is not buffered further.
    case lineTooLong(limit: Int)
    /// An address string could not be parsed or resolved.
    case invalidAddress(String)
    /// A Unix socket path does not fit in `sockaddr_un` (107 bytes on Linux).
    case pathTooLong(String)
    /// A handler was given a request of a kind it cannot serve (a stream handler on a datagram server).
    case unexpectedRequest(String)
    /// The writer was used after `close()`.
    case writerClosed
    /// `serveForever()` or `handleRequest()` was called on a server that `serverClose()` has closed (or is
    /// closing); Python raises `ValueError` there.
    case serverClosed
    /// `serveForever()` or `handleRequest()` was called while another thread serves the same server.
    case alreadyServing
    /// The handler does not fit the server: a stream handler on a datagram server, or the reverse. Thrown
    /// by the initialiser, before anything is bound.
    case handlerMismatch(String)
    /// A configuration value is out of range; thrown by the initialiser that was given it.
    case invalidConfiguration(String)
    /// `RequestReader.readToEnd` received more than `limit` bytes before end of file (a peer sending more
    /// than the handler accepts); at most `limit` bytes and one receive were buffered.
    case inputTooLong(limit: Int)
    /// `RequestReader.read(_:)` was asked for `count` bytes, which is negative or above the reader's
    /// `maxReadLength` (`limit`); nothing was received or consumed.
    case readLengthOutOfRange(count: Int, limit: Int)
    /// A descriptor handed to a server to adopt (an inherited listener, systemd socket activation) is not
    /// one it can serve: closed, of another type or family, unbound, or a stream socket that does not listen.
    /// Thrown by the adopting initialiser or `SocketActivation.listeners()`; the descriptor is left open.
    case invalidListener(String)
    /// A process that was to take over (a re-executed server, a worker) could not be started, exited before
    /// it was ready, or did not report ready in time.
    case processStartFailed(String)

    /// A sentence saying what went wrong.
    public var description: String {
        switch self {
        case .lineTooLong(let limit): "line longer than \(limit) bytes"
        case .invalidAddress(let address): "invalid address: \(address)"
        case .pathTooLong(let path): "Unix socket path too long (\(path.utf8.count) bytes): \(path)"
        case .unexpectedRequest(let detail): "unexpected request: \(detail)"
        case .writerClosed: "write to a closed writer"
        case .serverClosed: "the server is closed"
        case .alreadyServing: "the server is already serving on another thread"
        case .handlerMismatch(let detail): "handler does not fit the server: \(detail)"
        case .invalidConfiguration(let detail): "invalid configuration: \(detail)"
        case .inputTooLong(let limit): "input longer than \(limit) bytes"
        case .readLengthOutOfRange(let count, let limit): "read of \(count) bytes is not in 0...\(limit)"
        case .invalidListener(let detail): "cannot adopt the listener: \(detail)"
        case .processStartFailed(let detail): "process did not start: \(detail)"
        }
    }
}
