/// A handler's view of its connection in `EventMode`: write without blocking, close, pause and resume reading.
///
/// A small value (one reference) handed to every `EventStreamHandler` call; it may be stored (for example
/// to broadcast to other connections of the same loop) but must only be used on the loop that called the
/// handler. After the connection closed, writes are ignored and return false.
public struct EventConnection: Hashable {
    let core: StreamConnection

    init(_ core: StreamConnection) {
        self.core = core
    }

    /// The peer's address.
    public var clientAddress: SocketAddress { core.clientAddress }

    /// The connection's socket: for a security layer's view of it (`transport`). Not for I/O, which the
    /// loop does.
    package var socket: Socket { core.socket }

    /// The server that accepted the connection.
    public var server: BaseServer { core.server.server }

    /// Which of the mode's loops owns the connection (0 ..< `loops`).
    public var loopIndex: Int { core.worker.index }

    /// Whether the connection still takes writes and its queued output is below the high watermark. A
    /// producer that writes more than it reads should stop while this is false and resume in
    /// `outputDrained(on:)`.
    public var isWritable: Bool { core.isWritable }

    /// Whether the connection is closing or closed.
    public var isClosed: Bool { core.state != .open }

    /// Bytes written but not yet taken by the peer.
    public var bufferedOutputCount: Int { core.bufferedOutputCount }

    /// Bytes received that the handler left unconsumed.
    public var bufferedInputCount: Int { core.bufferedInputCount }

    /// Sends `bytes` without blocking: what the socket takes now goes out at once (no copy), the rest is
    /// queued and sent as the peer reads.
    /// - Returns: false when the connection no longer takes writes (closing, closed, or it just exceeded
    ///   `maxBufferedOutput` and is being closed).
    @discardableResult
    public func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        core.write(bytes)
    }

    /// Sends `bytes` without blocking; see `write(_:)`.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { core.write($0) }
    }

    /// Sends `text` as UTF-8 without blocking; see `write(_:)`.
    @discardableResult
    public func write(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { core.write(UnsafeRawBufferPointer($0)) }
    }

    /// Sends `header`, then a file region with `sendfile(2)`, without blocking and without copying the file
    /// through user space: what the socket takes now goes out at once, the rest is sent as the peer reads,
    /// and bytes written afterwards wait behind it.
    ///
    /// Bytes written earlier in the same callback and `header` (a response head) are flagged `MSG_MORE`,
    /// so a small response leaves in one segment with the file's first bytes.
    ///
    /// The region's unsent bytes count in `bufferedOutputCount` and against the high watermark (so
    /// `isWritable` turns false and reading pauses while a large file is on its way), not against
    /// `maxBufferedOutput`, since they take no memory; `outputDrained(on:)` runs once all of it has gone.
    /// The region's `owner` (or the caller) must keep the descriptor open until then or until the
    /// connection closes. A file that ends before the region does closes the connection (the peer gets a
    /// short body), with `FileRegionError.fileShrank` given to `connectionClosed`.
    /// - Parameters:
    ///   - region: the part of the file to send.
    ///   - header: bytes to send first; empty by default.
    /// - Returns: false when the connection no longer takes writes.
    @discardableResult
    public func sendFile(_ region: FileRegion, after header: [UInt8] = []) -> Bool {
        header.withUnsafeBytes { core.sendFile(region, after: $0) }
    }

    /// Closes the connection once its queued output has been sent; unread input is dropped. Idempotent.
    public func close() {
        core.close()
    }

    /// Stops reading from the peer (bytes wait in the kernel, and the peer eventually blocks) until
    /// `resumeReading()`. Unconsumed input is kept and offered again on resume.
    public func pauseReading() {
        core.pauseReading()
    }

    /// Reads again after `pauseReading()`.
    public func resumeReading() {
        core.resumeReading()
    }

    /// Two values are equal when they refer to the same connection.
    public static func == (lhs: EventConnection, rhs: EventConnection) -> Bool {
        lhs.core === rhs.core
    }

    /// Hashes the connection's identity.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(core))
    }
}

extension EventConnection {
    /// A reference to the connection that may cross threads; see `EventConnection.handle`.
    ///
    /// Safe to keep and use from any thread for as long as you like, before, during and after
    /// `serverClose()`: it retains the connection's memory and its loop's (never the descriptor, which
    /// closes with the connection), and it only reads immutable fields off the loop.
    public struct Handle: Sendable {
        // Read off the loop only for `core.worker.loop`, which is immutable and retained; everything else is
        // touched inside `execute`'s body, on the connection's own loop.
        private nonisolated(unsafe) let connection: EventConnection

        init(_ connection: EventConnection) {
            self.connection = connection
        }

        /// Runs `body` with the connection on its own loop, from any thread: how work done elsewhere (a
        /// blocking lookup on a thread pool) answers. Costs one closure allocation and one loop wake-up.
        ///
        /// If the connection has closed meanwhile, `body` still runs and its writes return false. Once the
        /// server's event loops have been stopped (`serverClose()` finished closing the mode, or is closing
        /// it past its `shutdownTimeout`), nothing runs any more: `body` is dropped and the call returns
        /// false, so the caller knows its answer was not delivered. A body accepted before that always runs.
        /// - Returns: true when `body` will run; false when the loop has stopped and `body` was dropped.
        @discardableResult
        public func execute(_ body: @escaping @Sendable (EventConnection) -> Void) -> Bool {
            let connection = self.connection
            let unchecked = UncheckedConnection(connection)
            return connection.core.worker.loop.execute { body(unchecked.connection) }
        }
    }

    /// A `Sendable` handle to this connection, for code running on other threads. Keeps the connection's
    /// memory (not its descriptor) alive while it exists.
    public var handle: Handle { Handle(self) }
}

/// Carries a connection into a closure that runs on the connection's own loop.
private struct UncheckedConnection: @unchecked Sendable {
    let connection: EventConnection
    init(_ connection: EventConnection) { self.connection = connection }
}
