/// Why the event mode closed a connection on its own: passed to `EventStreamHandler.connectionClosed` and,
/// for the limits, to the server's `handleError`.
public enum EventModeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Nothing was received or sent for the configured `idleTimeout`.
    case idleTimeout
    /// The handler left more than `maxBufferedInput` bytes unconsumed (for example a line without end).
    case inputLimitExceeded(limit: Int)
    /// A write would have queued more than `maxBufferedOutput` bytes for a peer that does not read.
    case outputLimitExceeded(limit: Int)
    /// The server closed while the connection was still open after `shutdownTimeout`.
    case shutdownDeadlineExpired
    /// A buffer could not be allocated.
    case outOfMemory

    /// A sentence saying what happened.
    public var description: String {
        switch self {
        case .idleTimeout: "connection idle for longer than the idle timeout"
        case .inputLimitExceeded(let limit): "more than \(limit) unconsumed input bytes"
        case .outputLimitExceeded(let limit): "more than \(limit) bytes of output queued for a peer that does not read"
        case .shutdownDeadlineExpired: "connection still open when the shutdown deadline expired"
        case .outOfMemory: "out of memory for a connection buffer"
        }
    }
}
