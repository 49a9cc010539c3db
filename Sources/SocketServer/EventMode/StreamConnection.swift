import Glibc

/// One accepted connection on one event loop: its socket, its handler, its buffers and its read/write
/// interest. Users see it through `EventConnection`.
///
/// Everything here runs on the owning loop's thread. The life cycle is `open` → `closing` (flushing queued
/// output after `close()` or end of input) → `closed` (events removed, handler told, `shutdownRequest` run).
/// State changes requested from outside the connection's own callbacks (another connection's handler, the
/// shutdown) are applied by waking the connection's write callback, so that a connection is never freed
/// under a handler that is still using it.
final class StreamConnection: SocketEventTarget {
    enum State {
        case open
        case closing
        case closed
    }

    let clientAddress: SocketAddress
    /// Not retained, so that open connections do not keep a dropped server alive (the cycle server → mode →
    /// worker → connection → server); see `UnretainedServer`.
    let server: UnretainedServer
    let socket: Socket
    let descriptor: Int32
    /// Set to nil when the connection closes, which breaks the cycle a handler storing its connection makes.
    @exclusivity(unchecked) private(set) var handler: EventStreamHandler?
    /// Retained, so that a connection (and every `EventConnection.Handle` to it) keeps its loop's memory
    /// valid after the mode has shut the loop down. The worker's registry drops the connection when it
    /// closes, which breaks the cycle.
    let worker: EventWorker
    /// Where this connection sits in its worker's registry (swap-remove needs it).
    var registryIndex = -1

    // The state below is touched on the loop's thread only, by this connection's own methods, none of which
    // holds an access across a call that could come back into them (handlers get copies: `EventInput` views,
    // `EventConnection`). So the runtime's exclusivity checks, one `swift_beginAccess` of about 75 instructions
    // per property access (8 per echoed request, a fifth of event mode's cost), are switched off here.
    @exclusivity(unchecked) private(set) var state = State.open
    @exclusivity(unchecked) private var events = SocketEvents()
    @exclusivity(unchecked) private var input = ByteQueue()
    @exclusivity(unchecked) private var output = ByteQueue()
    /// File regions queued behind `output` (`sendFile`), each with the bytes written after it; empty (and
    /// unallocated) unless the handler sends files.
    @exclusivity(unchecked) private var files: [QueuedFile] = []
    /// The bytes of file regions still to send, counted against the watermarks (not `maxBufferedOutput`:
    /// they take no memory).
    @exclusivity(unchecked) private var queuedFileBytes = 0
    /// The bytes written behind queued file regions, in memory, counted against `maxBufferedOutput` too.
    @exclusivity(unchecked) private var trailerBytes = 0
    @exclusivity(unchecked) private var failure: (any Error)?
    /// Why an orderly close happened, when not at the handler's own initiative (an idle timeout the handler
    /// answered): given to `connectionClosed`.
    @exclusivity(unchecked) private var closeReason: (any Error)?
    @exclusivity(unchecked) private var isInCallback = false
    @exclusivity(unchecked) private var receivedEndOfInput = false
    @exclusivity(unchecked) private var isPausedByHandler = false
    @exclusivity(unchecked) private var isPausedByOutput = false
    @exclusivity(unchecked) private var needsRedelivery = false
    /// The security layer's byte transform (TLS), nil for a plain connection: see `EventStreamTransport`.
    private let transport: (any EventStreamTransport)?
    /// Whether the handler's `connectionOpened` ran (at once, or after a transport's handshake).
    @exclusivity(unchecked) private var isHandlerOpened = false
    /// Whether the transport produced its end of session (close_notify).
    @exclusivity(unchecked) private var isTransportClosed = false
    /// When the connection opened, read only with a `ServerObserver` set (nil otherwise).
    private var openedAt: ContinuousClock.Instant?
    /// The bytes read from and written to the socket, for `ServerObserver.connectionClosed`.
    private var bytesReceived = 0
    private var bytesSent = 0

    init(
        socket: Socket,
        clientAddress: SocketAddress,
        server: UnretainedServer,
        handler: EventStreamHandler,
        worker: EventWorker,
        transport: (any EventStreamTransport)? = nil
    ) {
        self.transport = transport
        self.socket = socket
        self.descriptor = socket.fileDescriptor
        self.clientAddress = clientAddress
        self.server = server
        self.handler = handler
        self.worker = worker
        super.init()
    }

    // MARK: - Life cycle, driven by the worker

    /// Registers with the loop and tells the handler; false when the loop could not take the descriptor.
    func open() -> Bool {
        guard events.attach(loop: worker.loop, descriptor: descriptor, target: self) else { return false }
        if let observer = server.server.observer {
            openedAt = .now
            observer.connectionAccepted()
        }
        if transport != nil {
            // The handler is opened once the handshake is done; until then only the handshake timeout runs.
            inCallback {}
            return true
        }
        inCallback {
            isHandlerOpened = true
            if let handler { try handler.connectionOpened(EventConnection(self)) }
        }
        return true
    }

    /// The server is closing: tell the handler, which may close the connection early.
    ///
    /// Bytes already in the kernel's buffer that the loop has not read yet (a request that arrived with, or
    /// just after, a connection accepted a moment before the shutdown) are read first, so that the handler
    /// sees them: a handler closing "idle" connections would otherwise close over unread bytes, which resets
    /// the connection and loses a request the client has sent. One `recv` when reading is not paused.
    func noticeShutdown() {
        // What the kernel already holds is read first (closing over unread bytes would reset the connection),
        // once the handler is open; one still in its transport's handshake just closes.
        if isHandlerOpened && state == .open && !isPausedByHandler && !isPausedByOutput { inCallback(receive) }
        guard state == .open else { return }
        inCallback {
            guard isHandlerOpened else {
                if state == .open { state = .closing }
                return
            }
            handler?.serverShuttingDown(EventConnection(self))
        }
    }

    /// Closes at once, dropping queued output (the shutdown deadline expired).
    func forceClose(_ error: any Error) {
        finalize(error: error)
    }

    // MARK: - Loop callbacks

    override func socketReadable() {
        if let transport {
            inCallback { try receiveSecured(transport) }
        } else {
            inCallback(receive)
        }
    }

    override func socketWritable() {
        inCallback(flush)
    }

    override func socketTimedOut() {
        inCallback {
            if let transport, !transport.isEstablished {
                if let observer = server.server.observer { observer.connectionRejected(.tlsHandshake) }
                self.report(transport.handshakeTimedOut)
                return
            }
            // A connection already closing (its farewell not taken by the peer) is dropped now.
            if state == .open, let handler, handler.idleTimeoutExpired(on: EventConnection(self)) {
                closeReason = EventModeError.idleTimeout
                return
            }
            fail(EventModeError.idleTimeout)
        }
    }

    // MARK: - Handler API (through EventConnection)

    var bufferedOutputCount: Int {
        pendingOutputCount + (isInCallback ? worker.stagedCount + worker.runCount : 0)
    }
    /// Queued bytes and file regions, in order.
    private var pendingOutputCount: Int { output.count + queuedFileBytes + trailerBytes }
    private var hasPendingOutput: Bool { !output.isEmpty || !files.isEmpty }
    var bufferedInputCount: Int { input.count }
    var isWritable: Bool {
        state == .open && failure == nil && bufferedOutputCount < worker.configuration.outputHighWatermark
    }

    /// Sends what the peer takes and queues the rest; false when the connection no longer takes writes.
    ///
    /// Inside the connection's own callback, writes are held back and leave together when the callback
    /// returns (a handler answering ten lines makes one send, not ten): bytes echoed from where they were
    /// received are sent from there without a copy, other small writes are staged in the loop's buffer.
    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        assertOnLoop()
        guard state == .open, failure == nil else { return false }
        guard let source = bytes.baseAddress, bytes.count > 0 else { return true }
        if isInCallback && output.isEmpty && files.isEmpty {
            if worker.isInReceiveBuffer(bytes) {
                if worker.runCount > 0, let run = worker.runStart, run + worker.runCount == source {
                    worker.runCount += bytes.count
                    return true
                }
                if worker.runCount == 0 && worker.stagedCount == 0 {
                    worker.runStart = source
                    worker.runCount = bytes.count
                    return true
                }
            }
            let staging = worker.stagingBuffer
            if bytes.count <= staging.count / 2 {
                stageRun()
                if worker.stagedCount + bytes.count > staging.count { flushPending() }
                if output.isEmpty && failure == nil, let target = staging.baseAddress {
                    (target + worker.stagedCount).copyMemory(from: source, byteCount: bytes.count)
                    worker.stagedCount += bytes.count
                    return true
                }
            } else {
                flushPending()  // what was held back goes first
            }
            if failure != nil { return false }
        }
        return sendOrQueue(bytes)
    }

    /// Copies a held-back run into the (then empty) staging buffer, so that other bytes can follow it.
    private func stageRun() {
        guard worker.runCount > 0, let run = worker.runStart, let target = worker.stagingBuffer.baseAddress else {
            return
        }
        target.copyMemory(from: run, byteCount: worker.runCount)
        worker.stagedCount = worker.runCount
        worker.runCount = 0
        worker.runStart = nil
    }

    /// Sends what this callback held back; queues what the socket does not take.
    /// With `moreComing`, the bytes are flagged `MSG_MORE` (a file follows at once).
    private func flushPending(moreComing: Bool = false) {
        if worker.runCount > 0, let run = worker.runStart {
            let count = worker.runCount
            worker.runCount = 0
            worker.runStart = nil
            _ = sendOrQueue(UnsafeRawBufferPointer(start: run, count: count), moreComing: moreComing)
        }
        let staged = worker.stagedCount
        guard staged > 0 else { return }
        worker.stagedCount = 0
        _ = sendOrQueue(UnsafeRawBufferPointer(rebasing: worker.stagingBuffer[0..<staged]), moreComing: moreComing)
    }

    /// Sends directly when nothing is queued, and queues the rest (or everything, behind queued output).
    private func sendOrQueue(_ bytes: UnsafeRawBufferPointer, moreComing: Bool = false) -> Bool {
        if let transport, bytes.count > 0 {
            do {
                try transport.encode(bytes)
            } catch {
                fail(error)
                return false
            }
            return sendTransportOutput()
        }
        return sendOrQueueRaw(bytes, moreComing: moreComing)
    }

    /// Sends (or queues) what the transport produced.
    private func sendTransportOutput() -> Bool {
        guard let transport else { return true }
        let buffer = worker.transportBuffer
        while transport.pendingOutputCount > 0 {
            let count = transport.takeOutput(into: buffer)
            guard count > 0 else { break }
            guard sendOrQueueRaw(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) else { return false }
        }
        return true
    }

    /// Sends bytes as they are on the wire when nothing is queued, and queues the rest.
    private func sendOrQueueRaw(_ bytes: UnsafeRawBufferPointer, moreComing: Bool = false) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        var sent = 0
        if output.isEmpty && files.isEmpty {
            let flags = Int32(MSG_NOSIGNAL | MSG_DONTWAIT) | (moreComing ? Int32(MSG_MORE) : 0)
            while sent < bytes.count {
                let count = send(descriptor, base + sent, bytes.count - sent, flags)
                if count > 0 {
                    sent += count
                    bytesSent &+= count
                    if sent < bytes.count { break }  // the socket buffer is full; do not ask again
                    continue
                }
                let code = errno
                if count < 0 && code == EINTR { continue }
                if count < 0 && (code == EAGAIN || code == EWOULDBLOCK) { break }
                fail(SocketError(operation: "send", code: count < 0 ? code : EPIPE))
                return false
            }
            if sent == bytes.count { return true }
        }
        let rest = UnsafeRawBufferPointer(rebasing: bytes[sent...])
        let limit = worker.configuration.maxBufferedOutput
        guard output.count + trailerBytes + rest.count <= limit else {
            fail(EventModeError.outputLimitExceeded(limit: limit))
            return false
        }
        if let last = files.last {
            // Behind a queued file: these bytes leave once it is sent.
            guard last.trailer.append(rest) else {
                fail(EventModeError.outOfMemory)
                return false
            }
            trailerBytes += rest.count
        } else if !output.append(rest) {
            fail(EventModeError.outOfMemory)
            return false
        }
        if !isInCallback { updateInterest() }
        return true
    }

    /// Sends `region` with `sendfile(2)` after what was written before it: what the socket takes now goes
    /// out at once, the rest is queued and sent as the peer reads (no memory beyond a small record), and
    /// bytes written later wait behind it. False when the connection no longer takes writes.
    func sendFile(_ region: FileRegion, after header: UnsafeRawBufferPointer) -> Bool {
        assertOnLoop()
        guard state == .open, failure == nil else { return false }
        // What was held back and the header go first, flagged MSG_MORE: the file's first bytes join them.
        let moreComing = !region.isEmpty
        if isInCallback {
            flushPending(moreComing: moreComing || !header.isEmpty)
            if failure != nil { return false }
        }
        guard sendOrQueue(header, moreComing: moreComing) else { return false }
        guard !region.isEmpty else { return true }
        var region = region
        if transport != nil {
            // `sendfile` would bypass the transport (TLS): the file goes through it like any write, so it
            // counts against `maxBufferedOutput`.
            do {
                try region.copyChunks { chunk in
                    guard sendOrQueue(chunk) else { throw EventModeError.outputLimitExceeded(limit: worker.configuration.maxBufferedOutput) }
                }
            } catch {
                fail(error)
                return false
            }
            return true
        }
        if output.isEmpty && files.isEmpty {
            do {
                // One call: it sends what the socket buffer takes; the rest waits for writability.
                bytesSent &+= try region.sendOnce(to: descriptor, timeoutIsSet: false) ?? 0
            } catch {
                fail(error)
                return false
            }
            if region.isEmpty { return true }
        }
        files.append(QueuedFile(region))
        queuedFileBytes += region.count
        if !isInCallback { updateInterest() }
        return true
    }

    /// Stops taking writes and closes once queued output has been sent.
    func close() {
        assertOnLoop()
        guard state == .open else { return }
        state = .closing
        if !isInCallback { events.wakeWriter() }
    }

    func pauseReading() {
        assertOnLoop()
        guard !isPausedByHandler else { return }
        isPausedByHandler = true
        if !isInCallback { updateInterest() }
    }

    func resumeReading() {
        assertOnLoop()
        guard isPausedByHandler else { return }
        isPausedByHandler = false
        // Bytes kept while paused may already hold complete messages: offer them without waiting for more.
        if !input.isEmpty || transport?.hasPendingInput == true { needsRedelivery = true }
        if !isInCallback {
            if needsRedelivery { events.wakeWriter() } else { updateInterest() }
        }
    }

    // MARK: - Internals

    /// Debug builds check the one rule the type system cannot: a connection is used on its own loop only.
    private func assertOnLoop() {
        assert(worker.loop.isInLoopThread, "an EventConnection was used outside its own event loop")
    }

    /// Runs `body` as the connection's own callback, then applies whatever state it left behind.
    private func inCallback(_ body: () throws -> Void) {
        guard state != .closed else { return }
        isInCallback = true
        do {
            try body()
        } catch {
            report(error)
        }
        if failure == nil {
            flushPending()
        } else {
            worker.stagedCount = 0
            worker.runCount = 0
            worker.runStart = nil
        }
        isInCallback = false
        settle()
    }

    private func receive() throws {
        guard state == .open, !receivedEndOfInput else { return }
        let buffer = worker.receiveBuffer
        var room = buffer.count
        if hasPendingOutput {
            // Do not read more than the output may still grow by before reaching the high watermark.
            room = min(room, max(worker.configuration.outputHighWatermark - pendingOutputCount, 1))
        }
        let count = recv(descriptor, buffer.baseAddress, room, 0)
        if count > 0 {
            bytesReceived &+= count
            try deliver(UnsafeRawBufferPointer(start: buffer.baseAddress, count: count))
        } else if count == 0 {
            receivedEndOfInput = true
            guard let handler else { return }
            var view = EventInput(input.readableBytes)
            defer { input.consume(view.consumedCount) }
            try handler.inputEnded(&view, on: EventConnection(self))
        } else {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return }
            fail(SocketError(operation: "recv", code: code))
        }
    }

    /// Hands new bytes to the handler, from the loop's buffer when nothing was left over, else appended to
    /// what was; keeps what the handler leaves.
    private func deliver(_ bytes: UnsafeRawBufferPointer) throws {
        guard let handler else { return }
        if input.isEmpty {
            var view = EventInput(bytes)
            defer { keepUnconsumed(view.readableBytes) }
            try handOver(&view, to: handler)
        } else {
            guard input.append(bytes) else { throw EventModeError.outOfMemory }
            try redeliverInput()
        }
    }

    // MARK: - Secured connections (a transport between the socket and the handler)

    /// Receives once into the loop's buffer and feeds the transport; advances the handshake (then runs
    /// `verifyRequest` and opens the handler); delivers what it decodes.
    private func receiveSecured(_ transport: any EventStreamTransport) throws {
        guard state == .open, !receivedEndOfInput else { return }
        let buffer = worker.receiveBuffer
        var room = buffer.count
        if !output.isEmpty {
            room = min(room, max(worker.configuration.outputHighWatermark - output.count, 1))
        }
        let count = recv(descriptor, buffer.baseAddress, room, 0)
        if count > 0 { bytesReceived &+= count }
        if count == 0 {
            try endSecuredInput()
            return
        }
        if count < 0 {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return }
            fail(SocketError(operation: "recv", code: code))
            return
        }
        try transport.feed(UnsafeRawBufferPointer(start: buffer.baseAddress, count: count))
        if !transport.isEstablished {
            let established: Bool
            do {
                established = try transport.advanceHandshake()
            } catch {
                if let observer = server.server.observer { observer.connectionRejected(.tlsHandshake) }
                throw error
            }
            guard sendTransportOutput(), established else { return }
            // Verified only now, on this loop, so that `verifyRequest` sees what the handshake established.
            let verified = try server.with { try $0.verifyRequest(.stream(socket), clientAddress: clientAddress) }
            guard verified else {
                if let observer = server.server.observer { observer.connectionRejected(.verifyRequest) }
                state = .closing
                return
            }
            isHandlerOpened = true
            if let handler { try handler.connectionOpened(EventConnection(self)) }
        }
        try decodeAndDeliver(transport)
    }

    /// Delivers what the transport decodes, one chunk of the loop's buffer at a time, until it needs more
    /// input, the handler pauses, or the connection stops being open. What a handler wrote from a chunk
    /// leaves before the next chunk overwrites the buffer.
    private func decodeAndDeliver(_ transport: any EventStreamTransport) throws {
        let buffer = worker.receiveBuffer
        while state == .open, failure == nil, !isPausedByHandler, !receivedEndOfInput {
            guard let count = try transport.decode(into: buffer) else { break }
            if count == 0 {
                try endSecuredInput()
                break
            }
            try deliver(UnsafeRawBufferPointer(start: buffer.baseAddress, count: count))
            flushPending()
        }
        _ = sendTransportOutput()
    }

    /// The peer ended its input (end of file, or the transport's orderly end): the handler hears of it
    /// with what is left, as on a plain connection; before the handshake completed the connection just
    /// closes.
    private func endSecuredInput() throws {
        receivedEndOfInput = true
        guard isHandlerOpened, let handler else {
            state = .closing
            return
        }
        var view = EventInput(input.readableBytes)
        defer { input.consume(view.consumedCount) }
        try handler.inputEnded(&view, on: EventConnection(self))
    }

    /// Offers kept input again (after `resumeReading`), then, on a secured connection, what the transport
    /// still holds.
    private func redeliver() throws {
        try redeliverInput()
        if let transport, state == .open, !isPausedByHandler {
            flushPending()
            try decodeAndDeliver(transport)
        }
    }

    private func redeliverInput() throws {
        guard let handler, !input.isEmpty else { return }
        var view = EventInput(input.readableBytes)
        defer { input.consume(view.consumedCount) }
        try handOver(&view, to: handler)
    }

    /// Runs the handler's `bytesReceived`: one request for `ServerObserver` when an observer is set (an
    /// async handler's driver excepted: there the request is the async handler's run).
    private func handOver(_ view: inout EventInput, to handler: EventStreamHandler) throws {
        guard let observer = server.server.observer, !(handler is AsyncConnectionDriver) else {
            return try handler.bytesReceived(&view, on: EventConnection(self))
        }
        try observer.observeRequest { try handler.bytesReceived(&view, on: EventConnection(self)) }
    }

    private func keepUnconsumed(_ rest: UnsafeRawBufferPointer) {
        guard !rest.isEmpty, state == .open, failure == nil else { return }
        if !input.append(rest) { fail(EventModeError.outOfMemory) }
    }

    private func flush() throws {
        if needsRedelivery {
            needsRedelivery = false
            if state == .open && !isPausedByHandler { try redeliver() }
        }
        guard hasPendingOutput, failure == nil else { return }
        let low = worker.configuration.outputLowWatermark
        let wasAboveLow = pendingOutputCount > low
        let drained = sendQueuedOutput()
        guard failure == nil, state == .open, let handler else { return }
        if drained {
            try handler.outputDrained(on: EventConnection(self))
        } else if wasAboveLow && pendingOutputCount <= low {
            handler.outputFellToLowWatermark(on: EventConnection(self))
        }
    }

    /// Sends queued bytes and file regions, in order, until the socket takes no more (one call each);
    /// returns true once everything has been sent.
    private func sendQueuedOutput() -> Bool {
        while true {
            if !output.isEmpty {
                let pending = output.readableBytes
                guard let base = pending.baseAddress else { return false }
                let count = send(descriptor, base, pending.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if count < 0 {
                    let code = errno
                    if code != EAGAIN && code != EWOULDBLOCK && code != EINTR {
                        fail(SocketError(operation: "send", code: code))
                    }
                    return false
                }
                output.consume(count)
                bytesSent &+= count
                if !output.isEmpty { return false }
            }
            guard let first = files.first else { return true }
            if !first.region.isEmpty {
                do {
                    guard let sent = try first.region.sendOnce(to: descriptor, timeoutIsSet: false) else { return false }
                    queuedFileBytes -= sent
                    bytesSent &+= sent
                } catch {
                    fail(error)
                    return false
                }
                if !first.region.isEmpty { return false }
            }
            // The region is sent: the bytes written after it come next.
            trailerBytes -= first.trailer.count
            output.exchange(with: &first.trailer)
            files.removeFirst()
        }
    }

    /// Records the first failure; the connection closes when its current callback ends.
    private func fail(_ error: any Error) {
        guard state != .closed, failure == nil else { return }
        failure = error
        if !isInCallback { events.wakeWriter() }
    }

    /// A handler error, or a limit the peer broke, goes to the server's `handleError`.
    private func report(_ error: any Error) {
        fail(error)
        server.with { $0.handleError(error, clientAddress: clientAddress) }
    }

    /// Applies the state a callback left: closes on failure or once a requested close has flushed, checks
    /// the input bound, and registers the read/write interest that fits.
    private func settle() {
        guard state != .closed else { return }
        if failure == nil && input.count > worker.configuration.maxBufferedInput {
            report(EventModeError.inputLimitExceeded(limit: worker.configuration.maxBufferedInput))
        }
        if let failure {
            finalize(error: failure)
            return
        }
        if state == .closing {
            input.release()
            if let transport, transport.isEstablished, !isTransportClosed {
                isTransportClosed = true
                transport.close()
                _ = sendTransportOutput()
                if failure != nil {
                    settle()
                    return
                }
            }
            if !hasPendingOutput {
                finalize(error: nil)
                return
            }
        }
        updateInterest()
        // Only after the interest update: removing write interest (the output just drained) deletes the
        // write event, and libevent's event_del also drops an activation still pending, which would leave
        // kept input (pipelined requests) unoffered until the peer sent more.
        if needsRedelivery { events.wakeWriter() }
    }

    private func updateInterest() {
        let configuration = worker.configuration
        let queued = pendingOutputCount
        if isPausedByOutput {
            if queued <= configuration.outputLowWatermark { isPausedByOutput = false }
        } else if queued >= configuration.outputHighWatermark {
            isPausedByOutput = true
        }
        let reading = state == .open && !receivedEndOfInput && !isPausedByHandler && !isPausedByOutput
        var timeout = worker.idleTimeout
        if let transport, !transport.isEstablished { timeout = worker.timeout(transport.handshakeTimeout) }
        events.update(reading: reading, writing: hasPendingOutput, timeout: timeout)
    }

    /// Removes the events before the descriptor is closed, tells the handler, and hands the socket back
    /// to the server (`shutdownRequest` half-closes and closes it).
    private func finalize(error: (any Error)?) {
        guard state != .closed else { return }
        state = .closed
        events.close()
        input.release()
        output.release()
        files.removeAll()
        queuedFileBytes = 0
        trailerBytes = 0
        let handler = self.handler
        self.handler = nil
        if isHandlerOpened { handler?.connectionClosed(EventConnection(self), error: error ?? closeReason) }
        if let openedAt, let observer = server.server.observer {
            observer.connectionClosed(duration: .now - openedAt, bytesReceived: bytesReceived, bytesSent: bytesSent)
        }
        server.with { $0.shutdownRequest(.stream(socket)) }
        worker.remove(self)
    }
}

/// A file region queued on a connection, and the bytes written after it (sent once it is).
final class QueuedFile {
    var region: FileRegion
    var trailer = ByteQueue()

    init(_ region: FileRegion) {
        self.region = region
    }
}
