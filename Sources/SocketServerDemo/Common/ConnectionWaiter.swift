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
        try retry(giveUp: .at(deadline), leaveWhenDraining: leaveWhenDraining, isFresh: isFresh, receive)
    }

    /// Runs `receive` until it returns, as `receive(until:leaveWhenDraining:isFresh:_:)`, giving up on a
    /// client once it has sent nothing for `idleTimeout`.
    ///
    /// Reads no clock while `receive` returns without a tick timing out (a busy connection's case): the
    /// quiet time starts one tick before the first tick in which nothing arrived, when the client was
    /// already silent, so a client silent from the start is dropped within a tick of when
    /// `until: .now + idleTimeout` drops it.
    /// - Throws: `ConnectionIdleError` once the client has been quiet for `idleTimeout`; what `receive`
    ///   throws, except tick timeouts.
    func receive<Value>(
        idleTimeout: Duration,
        leaveWhenDraining: Bool,
        isFresh: Bool = false,
        _ receive: () throws -> Value
    ) throws -> Value? {
        try retry(giveUp: .idle(idleTimeout), leaveWhenDraining: leaveWhenDraining, isFresh: isFresh, receive)
    }

    /// When a waiter gives up on a client that sends nothing.
    private enum GiveUp {
        /// At this instant.
        case at(ContinuousClock.Instant)
        /// After this long without a byte, counted from the first tick that timed out, less a tick.
        case idle(Duration)
    }

    /// The first try, kept apart from `keepTrying` so that the common case (the bytes are there, or arrive
    /// within the tick) sets up none of the clock values, whose layout is only known at run time.
    @inline(__always)
    private func retry<Value>(
        giveUp: @autoclosure () -> GiveUp,
        leaveWhenDraining: Bool,
        isFresh: Bool,
        _ receive: () throws -> Value
    ) throws -> Value? {
        do {
            return try receive()
        } catch let error as SocketError where error.isTimeout || error.code == EAGAIN {
            return try keepTrying(giveUp: giveUp(), leaveWhenDraining: leaveWhenDraining, isFresh: isFresh, receive)
        }
    }

    /// After a first tick timed out: checks the shutdown notice and the deadline, tries again, and so on.
    private func keepTrying<Value>(
        giveUp: GiveUp,
        leaveWhenDraining: Bool,
        isFresh: Bool,
        _ receive: () throws -> Value
    ) throws -> Value? {
        let deadline: ContinuousClock.Instant
        switch giveUp {
        case .at(let instant): deadline = instant
        case .idle(let quiet): deadline = .now - Self.tick + quiet
        }
        var drainNoticed: ContinuousClock.Instant?
        while true {
            if leaveWhenDraining && reader.bufferedCount == 0 && drain.isDraining {
                guard isFresh else { return nil }
                let noticed = drainNoticed ?? .now
                drainNoticed = noticed
                if ContinuousClock.now - noticed >= Self.freshGrace { return nil }
            }
            if ContinuousClock.now >= deadline { throw ConnectionIdleError() }
            do {
                return try receive()
            } catch let error as SocketError where error.isTimeout || error.code == EAGAIN {
                continue
            }
        }
    }
}
