/// A datagram server: UDP over IPv4 or IPv6 (Python's `socketserver.UDPServer`).
///
/// Each datagram is one request, `Request.datagram`, cut to `maxPacketSize` bytes. Nothing listens and
/// nothing is closed per request: the server socket is shared by every request.
open class UDPServer: TCPServer, @unchecked Sendable {
    /// Datagram.
    open override class var socketType: SocketType { .datagram }

    /// The largest datagram handed to a handler; longer ones are cut to exactly this size. Default 8192.
    /// (Read at every datagram, on the serving thread: no runtime exclusivity check.)
    @exclusivity(unchecked) open var maxPacketSize = 8192

    /// Does nothing: datagram sockets do not listen.
    open override func serverActivate() throws {}

    /// Receives one datagram and its sender, on the serving thread, without ever waiting: the socket stays
    /// blocking (so replies sent on it from handler threads wait for buffer space instead of failing with
    /// `EAGAIN`), and this receive passes `MSG_DONTWAIT`.
    /// - Throws: `SocketError`, which the serving loop swallows; `EAGAIN` at once when no datagram is queued
    ///   after all (a spurious readiness, for example a datagram the kernel dropped for a bad checksum).
    ///
    /// In `serveForever` with an `EventDatagramHandler` (`EventMode`) or `SynchronousMode`, one readiness
    /// receives up to 32 datagrams with one `recvmmsg(2)` (fewer for a `maxPacketSize` over 128 KiB) and
    /// handles them one after the other
    /// before going back to the loop (so other events wait for at most one batch); each call here then hands
    /// out the next of them. Otherwise each call receives one datagram. The packet array is reused for the
    /// next datagram unless a handler kept it, so a handler that does not keep it costs no allocation.
    open override func getRequest() throws -> (Request, SocketAddress) {
        guard let batch = currentReceiveBatch() else {
            let (packet, clientAddress) = try socket.receiveFrom(maxLength: maxPacketSize, nonBlocking: true)
            return (.datagram(Datagram(packet: packet, socket: socket)), clientAddress)
        }
        if !batch.hasPending {
            try batch.receive(on: socket.fileDescriptor, limit: isHandlingBatch ? batch.capacity : 1)
        }
        let (packet, clientAddress) = batch.take()
        return (.datagram(Datagram(packet: packet, socket: socket)), clientAddress)
    }

    // Serving-thread state of the batched receive (see `getRequest`): no runtime exclusivity checks.
    @exclusivity(unchecked) private(set) var receiveBatch: DatagramReceiveBatch?
    @exclusivity(unchecked) private var isHandlingBatch = false
    /// Whether the mode takes datagrams in batches, decided at the first readiness (see `DatagramBatching`).
    @exclusivity(unchecked) private var receivesBatches: Bool?
    /// Where event-mode replies wait for the batch's end.
    @exclusivity(unchecked) private var batchReplies: DatagramReplyQueue?

    /// The receive batch for the current `maxPacketSize` (made again when it changed); nil when not positive.
    private func currentReceiveBatch() -> DatagramReceiveBatch? {
        let size = maxPacketSize
        if let batch = receiveBatch, batch.slotSize == size { return batch }
        receiveBatch = DatagramReceiveBatch(slotSize: size)
        return receiveBatch
    }

    /// One readiness: a batch of datagrams in event and synchronous modes (see `getRequest`), their event-mode
    /// replies sent together at the end (`DatagramReplyQueue`); one datagram in the other modes.
    override func handleReadyRequests(loop: EventLoop) throws {
        if receivesBatches == nil {
            let batching = DatagramBatching(mode: mode)
            receivesBatches = batching.receivesBatches
            batchReplies = batching.replies
        }
        guard receivesBatches == true else { return try super.handleReadyRequests(loop: loop) }
        let replies = batchReplies
        replies?.beginBatch(loop: loop, logger: logger)
        isHandlingBatch = true
        defer {
            isHandlingBatch = false
            replies?.endBatch(on: socket)
        }
        do {
            // A custom `getRequest()` that does not call this class's leaves nothing pending: one request.
            // `serviceActions()` still runs after every request (`serveForever` runs it after the last).
            try handleRequestNoBlock(loop: loop)
            while receiveBatch?.hasPending == true {
                serviceActions()
                try handleRequestNoBlock(loop: loop)
            }
        } catch {
            receiveBatch?.discardPending()
            throw error
        }
    }

    override func servingStopped() {
        receiveBatch?.discardPending()
        batchReplies?.stop()
    }

    /// Calls `closeRequest`; there is no connection to half-close.
    open override func shutdownRequest(_ request: Request) {
        closeRequest(request)
    }

    /// Does nothing: the server socket is shared.
    open override func closeRequest(_ request: Request) {}
}

/// How a datagram server's mode takes datagrams: in batches (event-mode `EventDatagramHandler`s and synchronous
/// mode, which handle them where they are received, without a capacity to check) or one per readiness; and
/// where event-mode replies wait for the batch's end.
private struct DatagramBatching {
    let receivesBatches: Bool
    let replies: DatagramReplyQueue?

    init(mode: any ConcurrencyMode) {
        // Async datagram handlers (an `EventMode` without a reply queue) are bounded by `maxConnections`, checked
        // per readiness: they take one datagram at a time.
        replies = (mode as? EventMode)?.datagramReplies
        receivesBatches = replies != nil || mode is SynchronousMode
    }
}
