/// A non-blocking handler for one connection of a stream server in `EventMode`.
///
/// The event mode creates one instance per accepted connection (with `init()`) and calls it on the event
/// loop that owns the connection, never from two threads at once. Every method must return quickly and never
/// block: while it runs, every other connection of that loop waits. Write with `EventConnection.write`,
/// which never blocks (what the peer cannot take yet is queued). An error thrown from a method goes to the
/// server's `handleError` and closes the connection.
///
/// ```swift
/// final class LineEcho: EventStreamHandler {
///     override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
///         while let line = input.readLine() { connection.write(line) }
///     }
/// }
/// ```
open class EventStreamHandler {
    /// Creates the handler for a new connection. Keep it cheap: it runs once per accepted connection.
    public required init() {}

    /// The connection was accepted and adopted by its loop; nothing has been read yet. Does nothing here.
    open func connectionOpened(_ connection: EventConnection) throws {}

    /// Bytes arrived. Consume what can be handled now (`readLine()`, `read(_:)`, `readAll()`); the rest is
    /// kept and offered again with the next bytes. Discards everything here.
    open func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        input.consume(input.count)
    }

    /// The peer closed its sending side (end of file); no more bytes will arrive. `input` holds what earlier
    /// calls left unconsumed (for example a last line without its newline), for the handler to take now;
    /// whatever stays unconsumed is dropped. Closes the connection here, once queued output has been sent.
    /// Override to answer a final unterminated message or keep writing to a half-closed peer.
    open func inputEnded(_ input: inout EventInput, on connection: EventConnection) throws {
        connection.close()
    }

    /// Output that had to be queued has now all been sent (the peer caught up). Does nothing here.
    open func outputDrained(on connection: EventConnection) throws {}

    /// Queued output fell to `outputLowWatermark` without draining completely; for the async driver,
    /// whose writers wait for it. Does nothing here.
    func outputFellToLowWatermark(on connection: EventConnection) {}

    /// Nothing happened on the connection for the mode's `idleTimeout`. Return false (the default) to
    /// close it at once, dropping queued output, with `EventModeError.idleTimeout` given to
    /// `connectionClosed`. Return true to keep it for now, for example after writing a last answer (an
    /// HTTP 408) and calling `close()`, which then sends it before closing; if the connection stays idle,
    /// this is called again after another `idleTimeout`.
    open func idleTimeoutExpired(on connection: EventConnection) -> Bool { false }

    /// The server is closing: new connections are no longer accepted and this one will be closed when
    /// `shutdownTimeout` expires. Does nothing here, letting the client finish; override to close sooner,
    /// for example once the current request is answered.
    open func serverShuttingDown(_ connection: EventConnection) {}

    /// The connection is closed and its descriptor released. `error` says why when it was not an orderly
    /// close: a `SocketError` (for example a reset), or an `EventModeError` (timeout, limits, shutdown).
    /// Does nothing here.
    open func connectionClosed(_ connection: EventConnection, error: (any Error)?) {}
}
