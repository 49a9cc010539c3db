import CSocketServerShims
import Glibc
import SocketServer

/// A connection went quiet for longer than the service's `--timeout`.
struct ConnectionIdleError: Error, CustomStringConvertible {
    var description: String { "client idle past the timeout" }
}

/// Receives on a connection in short ticks, so that a handler blocked on a silent client still notices a
/// shutdown and still drops a client that went quiet or vanished.
///
/// `prepare(_:sendTimeout:)` gives the connection a 100 ms receive timeout (and the service's timeout for
/// sends). Each receive that times out costs one wake-up per tick; a receive that gets data costs nothing
/// extra, so the request path has no additional system call. A timed-out receive leaves `RequestReader`'s
/// buffer as it was, so the read is simply retried.
struct ConnectionWaiter {
    /// How long a connection that has sent nothing yet may still deliver its first message after a shutdown
    /// notice.
    static let freshGrace: Duration = .seconds(1)

    /// How often a waiting handler looks at the shutdown notice and the clock.
    static let tick: Duration = .milliseconds(100)

    /// Applies the send timeout and the receive tick to `connection`.
    static func prepare(_ connection: Socket, sendTimeout: Duration) {
        connection.timeout = sendTimeout
        let (seconds, attoseconds) = tick.components
        _ = CSocketServerShims_set_socket_timeout(
            connection.fileDescriptor, SO_RCVTIMEO, seconds, attoseconds / 1_000_000_000_000)
    }

    /// The handler's buffered input, consulted to tell a quiet client from one in the middle of a message.
    let reader: RequestReader
    /// The shutdown notice.
    let drain: DrainNotice

    /// Runs `receive` until it returns, retrying after every tick in which nothing arrived.
    ///
    /// - Parameters:
    ///   - deadline: when to give up on a client that sends nothing.
    ///   - leaveWhenDraining: return nil once a shutdown is announced and nothing partial is buffered (the
    ///     client is between messages, so closing loses nothing).
    ///   - isFresh: the connection has not sent its first message yet. A client that has just connected
    ///     (perhaps to a process that is handing its listener to its successor) is sending one: it gets
    ///     `freshGrace` after the shutdown notice before the connection is left.
    /// - Returns: what `receive` returned, or nil when the service is shutting down.
    /// - Throws: `ConnectionIdleError` after `deadline`; what `receive` throws, except tick timeouts.
    func receive<Value>(
        until deadline: ContinuousClock.Instant,
        leaveWhenDraining: Bool,
        isFresh: Bool = false,
        _ receive: () throws -> Value
    ) throws -> Value? {
        var drainNoticed: ContinuousClock.Instant?
        while true {
            do {
                return try receive()
            } catch let error as SocketError where error.isTimeout || error.code == EAGAIN {
                if leaveWhenDraining && reader.bufferedCount == 0 && drain.isDraining {
                    guard isFresh else { return nil }
                    let noticed = drainNoticed ?? .now
                    drainNoticed = noticed
                    if ContinuousClock.now - noticed >= Self.freshGrace { return nil }
                }
                if ContinuousClock.now >= deadline { throw ConnectionIdleError() }
            }
        }
    }
}
