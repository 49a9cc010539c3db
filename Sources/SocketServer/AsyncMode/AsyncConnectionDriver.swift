import Glibc

/// Runs one `AsyncStreamRequestHandler` for one event-mode connection: the bridge between the loop's
/// callbacks and the handler's task.
///
/// An `EventStreamHandler` like any other, so the connection gets everything event mode gives (input and
/// output bounds, idle timeout, `maxConnections`, graceful shutdown). Its state is confined to the loop's
/// thread: the callbacks run there, and so does the handler's task, which prefers the loop as its executor.
/// Callbacks only move bytes and resume the one waiting reader or writer (resuming enqueues the task's job on
/// the same loop; no thread hop, no allocation). Input is copied once into the driver's buffer, which is
/// bounded by `maxBufferedInput`: above it the driver stops reading from the peer until the handler catches
/// up. A writer that found output above the high watermark waits until it falls to the low watermark
/// (`outputFellToLowWatermark` or `outputDrained`). With the handler's `timeout` set, each suspended read
/// or write arms a one-shot libevent timer (created once per connection, on first use) that makes it
/// throw `ETIMEDOUT`; the connection stays usable.
final class AsyncConnectionDriver: EventStreamHandler {
    let loop: EventLoop
    let clientAddress: SocketAddress
    private let makeHandler: @Sendable (AsyncHandlerContext) throws -> AsyncStreamRequestHandler
    private let inputLimit: Int
    /// A waiting writer resumes once queued output falls to this.
    let outputLowWatermark: Int
    /// The handler's `timeout`: a limit on each suspended read and write; nil waits for ever.
    @exclusivity(unchecked) private(set) var timeout: Duration?
    /// Fire after `timeout` and make the suspended read or write throw; nil until first needed, and again
    /// once the connection closed (they must be freed on the loop, before it stops).
    @exclusivity(unchecked) private var readTimer: LoopEvent?
    @exclusivity(unchecked) private var writeTimer: LoopEvent?
    let unretainedServer: UnretainedServer

    // The state below is touched on the loop's thread only (the callbacks, and the handler's task, which
    // runs there), and no access spans a call that could come back in: resuming a waiter only enqueues its
    // task. So, as in `StreamConnection`, the runtime's exclusivity checks (`swift_beginAccess`, about 75
    // instructions each, several per message) are off.

    @exclusivity(unchecked) private(set) var connection: EventConnection?
    /// Received bytes the handler has not read yet.
    @exclusivity(unchecked) var input = ByteQueue()
    /// The peer sent end of file.
    @exclusivity(unchecked) private(set) var endOfInput = false
    /// Why the connection is unusable (closed, reset, timed out); reads and writes throw it.
    @exclusivity(unchecked) private(set) var failure: (any Error)?
    @exclusivity(unchecked) private var readWaiter: UnsafeContinuation<Void, any Error>?
    @exclusivity(unchecked) private var writeWaiter: UnsafeContinuation<Void, any Error>?
    @exclusivity(unchecked) private var task: Task<Void, Never>?
    @exclusivity(unchecked) private var isPausedForInput = false
    /// The handler was told of one idle timeout already; the next one closes the connection.
    @exclusivity(unchecked) private var sawIdleTimeout = false
    /// The server is shutting down: a read that would wait for more input ends the input instead.
    @exclusivity(unchecked) private(set) var isShuttingDown = false
    /// Whether the peer has sent any byte yet.
    @exclusivity(unchecked) private var receivedAny = false

    init(
        context: EventHandlerContext,
        inputLimit: Int,
        outputLowWatermark: Int = 0,
        makeHandler: @escaping @Sendable (AsyncHandlerContext) throws -> AsyncStreamRequestHandler
    ) {
        self.loop = context.loop
        self.clientAddress = context.clientAddress
        self.inputLimit = max(inputLimit, 1)
        self.outputLowWatermark = max(outputLowWatermark, 0)
        self.makeHandler = makeHandler
        self.unretainedServer = context.unretained
        super.init()
    }

    @available(*, unavailable)
    required init() {
        preconditionFailure("AsyncConnectionDriver is made by the async mode")
    }

    /// Whether the caller is on the loop that owns this connection.
    var isOnLoop: Bool { loop.isCurrentThreadRunningLoop }

    // MARK: - Loop callbacks

    override func connectionOpened(_ connection: EventConnection) throws {
        self.connection = connection
        let bound = LoopBound(self)
        task = Task(executorPreference: loop) {
            await bound.value.runHandler()
        }
    }

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        let bytes = input.readAll()
        receivedAny = true
        guard self.input.append(bytes) else { throw EventModeError.outOfMemory }
        if self.input.count >= inputLimit && !isPausedForInput {
            isPausedForInput = true
            connection.pauseReading()
        }
        wakeReader()
    }

    override func inputEnded(_ input: inout EventInput, on connection: EventConnection) throws {
        let rest = input.readAll()
        if !rest.isEmpty, !self.input.append(rest) { throw EventModeError.outOfMemory }
        endOfInput = true
        wakeReader()
    }

    override func outputDrained(on connection: EventConnection) throws {
        wakeWriter()
    }

    override func outputFellToLowWatermark(on connection: EventConnection) {
        wakeWriter()
    }

    /// The idle timeout fired: a handler waiting to read gets `EventModeError.idleTimeout` from that read
    /// and may still answer (an HTTP 408) before it returns; the connection closes when it does. With no
    /// read waiting (the handler is busy elsewhere, or ignored the first one), the connection closes now.
    override func idleTimeoutExpired(on connection: EventConnection) -> Bool {
        guard let waiter = readWaiter, !sawIdleTimeout else { return false }
        sawIdleTimeout = true
        readWaiter = nil
        waiter.resume(throwing: EventModeError.idleTimeout)
        return true
    }

    /// Shutdown began: a handler waiting for input with nothing buffered sees end of input now, so idle
    /// connections close at once instead of at the shutdown deadline; one holding part of a message keeps
    /// waiting for the rest (until the deadline), and its next wait with nothing buffered ends the same way.
    ///
    /// A connection that has sent nothing yet is not idle (see `prepareToWaitForInput`): its first request is
    /// waited for, up to the deadline. Ending its input here too lost the request of a client that connected
    /// just before the shutdown (seen in the restart tests: an echo answered with end of file).
    override func serverShuttingDown(_ connection: EventConnection) {
        isShuttingDown = true
        if input.isEmpty && receivedAny {
            endOfInput = true
            wakeReader()
        }
    }

    override func connectionClosed(_ connection: EventConnection, error: (any Error)?) {
        if failure == nil { failure = error ?? AsyncConnectionClosed() }
        self.connection = nil
        input.release()
        wakeReader()
        wakeWriter()
        readTimer = nil
        writeTimer = nil
        // Past the shutdown deadline the handler's task is cancelled too, so work it awaits elsewhere ends.
        if case .shutdownDeadlineExpired? = error as? EventModeError { task?.cancel() }
    }

    // MARK: - For the reader and writer (on the loop, inside the handler's task)

    /// Prepares to wait for more input, end of input or a failure: returns true when the caller must now
    /// park in `withUnsafeThrowingContinuation { driver.parkReader($0) }`, false when the input ended
    /// meanwhile (a shutdown). Synchronous, so that the reader's loop suspends in its own frame: every extra
    /// async call level costs a frame allocation and an executor check per message.
    func prepareToWaitForInput() throws -> Bool {
        try Task.checkCancellation()
        if let failure { throw failure }
        // A connection that has sent nothing yet is not idle: its first request is on its way (the client
        // may have connected to a process handing its listener on), so it is waited for, up to the mode's
        // shutdownTimeout.
        if isShuttingDown && input.isEmpty && receivedAny {
            endOfInput = true
            return false
        }
        if isPausedForInput, input.count < inputLimit / 2 {
            isPausedForInput = false
            connection?.resumeReading()
        }
        armTimer(reading: true)
        return true
    }

    /// Keeps the suspended reader's continuation until a callback resumes it.
    func parkReader(_ continuation: UnsafeContinuation<Void, any Error>) {
        readWaiter = continuation
    }

    /// Marks `count` buffered bytes as read, and reads from the peer again once the buffer has room.
    func consumeInput(_ count: Int) {
        input.consume(count)
        if isPausedForInput, input.count < inputLimit / 2 {
            isPausedForInput = false
            connection?.resumeReading()
        }
    }

    /// Waits until at most `limit` bytes of the connection's output are queued (0: all sent), or it failed.
    nonisolated(nonsending) func waitForOutput(atMost limit: Int) async throws {
        while let connection, connection.bufferedOutputCount > limit {
            try Task.checkCancellation()
            try await suspend(reading: false)
        }
        if let failure, connection == nil { throw failure }
    }

    /// Suspends the reader or the writer until a callback wakes it, with the handler's `timeout` armed.
    nonisolated(nonsending) private func suspend(reading: Bool) async throws {
        armTimer(reading: reading)
        if reading {
            try await withUnsafeThrowingContinuation { readWaiter = $0 }
        } else {
            try await withUnsafeThrowingContinuation { writeWaiter = $0 }
        }
    }

    /// Arms the handler's `timeout` for a read or write about to suspend (nothing without one).
    private func armTimer(reading: Bool) {
        guard let timeout, connection != nil else { return }
        let timer = reading ? (readTimer ?? makeTimer(reading: true)) : (writeTimer ?? makeTimer(reading: false))
        timer.add(timeout: timeout)
    }

    private func makeTimer(reading: Bool) -> LoopEvent {
        let timer = LoopEvent(timerOn: loop, repeating: false) { [unowned self] _ in timedOut(reading: reading) }
        if reading { readTimer = timer } else { writeTimer = timer }
        return timer
    }

    /// The handler's `timeout` expired under a suspended read or write: it throws; the connection stays.
    private func timedOut(reading: Bool) {
        let waiter = reading ? readWaiter : writeWaiter
        guard let waiter else { return }
        if reading { readWaiter = nil } else { writeWaiter = nil }
        waiter.resume(throwing: SocketError(operation: reading ? "recv" : "send", code: ETIMEDOUT))
    }

    /// Sends `bytes`, queueing what the peer cannot take yet; returns whether the queue is now above the high
    /// watermark, so the caller must wait for it to drain.
    func writeNow(_ bytes: UnsafeRawBufferPointer) throws -> Bool {
        guard isOnLoop, let connection else { throw failure ?? AsyncConnectionClosed() }
        guard connection.write(bytes) else { throw failure ?? SocketError(operation: "send", code: EPIPE) }
        return !connection.isWritable
    }

    /// Sends a file region (queued behind earlier output); returns whether the caller must wait for it
    /// to drain, as `writeNow`.
    func sendFileNow(_ region: FileRegion, after header: [UInt8]) throws -> Bool {
        guard isOnLoop, let connection else { throw failure ?? AsyncConnectionClosed() }
        guard connection.sendFile(region, after: header) else { throw failure ?? SocketError(operation: "sendfile", code: EPIPE) }
        return !connection.isWritable
    }

    // MARK: - The handler's life

    private func runHandler() async {
        let context = AsyncHandlerContext(driver: self)
        var failure: (any Error)?
        // One request per async handler run, for the observer (captured: the server may be gone at the end).
        let observer = unretainedServer.with { $0.observer }
        let start = observer == nil ? nil : ContinuousClock.now
        if let observer { observer.requestStarted() }
        do {
            let handler = try makeHandler(context)
            timeout = handler.timeout
            try await handler.run()
        } catch {
            failure = error
        }
        if let observer, let start { observer.requestFinished(duration: .now - start, error: failure) }
        // Still on the loop unless the loop stopped meanwhile (then the connection is closed already).
        guard isOnLoop else { return }
        if let failure, !(failure is AsyncConnectionClosed), self.failure == nil || !(failure is CancellationError) {
            unretainedServer.with { $0.handleError(failure, clientAddress: clientAddress) }
        }
        connection?.close()
        task = nil
    }

    private func wakeReader() {
        guard let waiter = readWaiter else { return }
        readWaiter = nil
        readTimer?.remove()
        if let failure { waiter.resume(throwing: failure) } else { waiter.resume() }
    }

    private func wakeWriter() {
        guard let waiter = writeWaiter else { return }
        writeWaiter = nil
        writeTimer?.remove()
        if let failure, connection == nil { waiter.resume(throwing: failure) } else { waiter.resume() }
    }
}

/// The connection closed under a read or write of an async handler (after an orderly close by the server).
public struct AsyncConnectionClosed: Error, Sendable, CustomStringConvertible {
    /// Creates the error.
    public init() {}
    /// A sentence saying what happened.
    public var description: String { "the connection is closed" }
}

/// Carries a value confined to one event loop into a task that runs on that loop (it prefers the loop as
/// its executor). Sound only because every access happens on the loop's thread; `value` checks it in debug
/// builds.
struct LoopBound<Value>: @unchecked Sendable {
    private let storage: Value
    private let loop: EventLoop

    init(_ value: Value) where Value == AsyncConnectionDriver {
        self.storage = value
        self.loop = value.loop
    }

    var value: Value {
        assert(loop.isCurrentThreadRunningLoop, "a loop-bound value was used off its loop")
        return storage
    }
}
