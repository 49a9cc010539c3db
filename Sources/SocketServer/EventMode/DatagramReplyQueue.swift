import CSocketServerShims
import Glibc
import Logging
import Synchronization

/// The replies an event-mode datagram handler sends during one batch, sent together with one `sendmmsg(2)`.
///
/// Owned by the `EventMode` of a datagram server. While the serving thread handles a batch (between
/// `beginBatch(loop:logger:)` and `endBatch(on:)`), `EventDatagram.reply` called on that thread appends the
/// reply here instead of sending it; the batch's end sends them all in one call. What the socket cannot take
/// (`EAGAIN`) stays queued and goes out when it becomes writable (a one-shot write event on the serving
/// loop), so it is not lost; a reply that finds the queue full while it waits is dropped, as the network may.
/// A reply from any other thread, or outside a batch, is sent at once as before.
///
/// Bounded: at most `CSOCKETSERVERSHIMS_BATCH_MAX` replies and `byteLimit` bytes. Its storage grows to the
/// largest batch seen and is then reused, so replying allocates nothing in steady state. All state but
/// `collectingThread` is touched only on the serving thread.
final class DatagramReplyQueue: @unchecked Sendable {
    /// The most replies queued.
    static let capacity = Int(CSOCKETSERVERSHIMS_BATCH_MAX)
    /// The most payload bytes queued.
    static let byteLimit = 1 << 20

    /// The serving thread while it handles a batch, else 0: a reply checks it to know whether it may queue.
    private let collectingThread = Atomic<UInt>(0)
    // Fixed-capacity storage, allocated once; `bytes` grows (up to `byteLimit`) to the largest batch seen.
    private let offsets = UnsafeMutablePointer<Int>.allocate(capacity: DatagramReplyQueue.capacity)
    private let lengths = UnsafeMutablePointer<Int>.allocate(capacity: DatagramReplyQueue.capacity)
    private let payloads = UnsafeMutablePointer<UnsafeRawPointer?>.allocate(capacity: DatagramReplyQueue.capacity)
    private let addresses = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: DatagramReplyQueue.capacity)
    private let addressLengths = UnsafeMutablePointer<UInt32>.allocate(capacity: DatagramReplyQueue.capacity)
    // Serving-thread state only (see the type's documentation): no runtime exclusivity checks.
    @exclusivity(unchecked) private var bytes = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 16)
    @exclusivity(unchecked) private var byteCapacity = 4096
    @exclusivity(unchecked) private var byteCount = 0
    @exclusivity(unchecked) private var count = 0
    /// The socket refused the last send with `EAGAIN`: a write event waits for room.
    @exclusivity(unchecked) private var isBlocked = false
    @exclusivity(unchecked) private var writeEvent: LoopEvent?

    init() {}

    deinit {
        offsets.deallocate()
        lengths.deallocate()
        payloads.deallocate()
        addresses.deallocate()
        addressLengths.deallocate()
        bytes.deallocate()
    }

    /// How many times the socket had no room for queued replies (read from any thread, for the tests).
    let timesBlocked = Atomic<Int>(0)

    /// Whether a reply on the calling thread is queued rather than sent at once.
    @inline(__always)
    var isCollectingOnThisThread: Bool {
        let current = collectingThread.load(ordering: .relaxed)
        return current != 0 && current == UInt(pthread_self())
    }

    /// Starts collecting replies; on the serving thread (which runs `loop`), before the batch's handlers run.
    /// `logger` (the server's) is read only at the first batch: copying a `Logger` at every readiness costs
    /// more than the rest of this call.
    func beginBatch(loop: EventLoop, logger: @autoclosure () -> Logger) {
        if writeLoop !== loop { writeLoop = loop }
        if self.logger == nil { self.logger = logger() }
        collectingThread.store(UInt(pthread_self()), ordering: .relaxed)
    }

    /// Stops collecting and sends what was queued (unless a write event already waits for room).
    func endBatch(on socket: Socket) {
        collectingThread.store(0, ordering: .relaxed)
        if count > 0 && !isBlocked, let loop = writeLoop { flush(on: socket, loop: loop) }
    }

    /// Queues `payload` for `address`; false when the queue is full while the socket has no room (dropped).
    /// Only on the collecting thread (`isCollectingOnThisThread`).
    func append(_ payload: UnsafeRawBufferPointer, to address: SocketAddress, socket: Socket) -> Bool {
        if count == Self.capacity || byteCount + payload.count > Self.byteLimit {
            // Full: make room by sending now, unless the socket has none either.
            guard !isBlocked, let loop = writeLoop else { return false }
            flush(on: socket, loop: loop)
            if count == Self.capacity || byteCount + payload.count > Self.byteLimit { return false }
        }
        let end = byteCount + payload.count
        if end > byteCapacity {
            // At most byteLimit (checked above): no overflow.
            let grown = UnsafeMutableRawPointer.allocate(byteCount: max(end, 2 * byteCapacity), alignment: 16)
            grown.copyMemory(from: bytes, byteCount: byteCount)
            bytes.deallocate()
            bytes = grown
            byteCapacity = max(end, 2 * byteCapacity)
        }
        if let source = payload.baseAddress { (bytes + byteCount).copyMemory(from: source, byteCount: payload.count) }
        offsets[count] = byteCount
        lengths[count] = payload.count
        byteCount = end
        address.withSockAddr { pointer, length in
            UnsafeMutableRawPointer(addresses + count).copyMemory(from: pointer, byteCount: Int(length))
            addressLengths[count] = UInt32(length)
        }
        count += 1
        return true
    }

    /// The serving loop (the write event runs there) and the server's logger (for the rare dropped reply),
    /// from `beginBatch`.
    @exclusivity(unchecked) private var writeLoop: EventLoop?
    @exclusivity(unchecked) private var logger: Logger?

    /// Sends the queued replies with `sendmmsg(2)` (`MSG_DONTWAIT`; again after `EINTR`) until all are sent
    /// or the socket is full, in which case a write event on `loop` sends the rest later.
    ///
    /// `afterWaiting` (the write event fired): a first reply refused again with `EAGAIN` although the socket
    /// reported room is dropped (a Unix peer whose own queue is full: waiting for it would spin the loop).
    private func flush(on socket: Socket, loop: EventLoop, afterWaiting: Bool = false) {
        let descriptor = socket.fileDescriptor
        guard descriptor >= 0 else { return discardAll() }
        var sent = 0
        for index in 0..<count { payloads[index] = UnsafeRawPointer(bytes + offsets[index]) }
        let storageSize = MemoryLayout<sockaddr_storage>.size
        while sent < count {
            let result = CSocketServerShims_send_batch(
                descriptor, payloads + sent, lengths + sent, addresses + sent, storageSize, addressLengths + sent,
                UInt32(count - sent), Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            if result > 0 {
                sent += Int(result)
                continue
            }
            let code = errno
            if result == 0 || code == EINTR { continue }
            if (code == EAGAIN || code == EWOULDBLOCK) && afterWaiting && sent == 0 {
                logger?.debug("datagram reply dropped: the peer takes no more", metadata: ["socketserver.error": "EAGAIN"])
                sent = 1
                continue
            }
            if code == EAGAIN || code == EWOULDBLOCK {
                removeFirst(sent)
                waitForRoom(on: socket, loop: loop)
                return
            }
            // The first unsent reply was refused (ENOBUFS, an address the system rejects): it alone is dropped.
            logger?.debug(
                "datagram reply dropped",
                metadata: ["socketserver.error": "\(SocketError(operation: "sendmmsg", code: code))"])
            sent += 1
        }
        discardAll()
    }

    /// Arms the one-shot write event that sends the rest once the socket has room.
    private func waitForRoom(on socket: Socket, loop: EventLoop) {
        isBlocked = true
        timesBlocked.wrappingAdd(1, ordering: .relaxed)
        let event = writeEvent ?? LoopEvent(loop: loop, descriptor: socket.fileDescriptor, flags: [.write]) {
            [unowned self] _ in
            self.isBlocked = false
            self.flush(on: socket, loop: loop, afterWaiting: true)
        }
        writeEvent = event
        event.add()
    }

    /// Drops the first `sent` replies, keeping the rest in order.
    private func removeFirst(_ sent: Int) {
        guard sent > 0 else { return }
        let cut = sent < count ? offsets[sent] : byteCount
        let remaining = count - sent
        bytes.copyMemory(from: bytes + cut, byteCount: byteCount - cut)
        byteCount -= cut
        for index in 0..<remaining {
            offsets[index] = offsets[index + sent] - cut
            lengths[index] = lengths[index + sent]
            addresses[index] = addresses[index + sent]
            addressLengths[index] = addressLengths[index + sent]
        }
        count = remaining
    }

    private func discardAll() {
        byteCount = 0
        count = 0
    }

    /// Ends serving: removes the write event and drops what is still queued (the socket is about to close or
    /// the loop to stop). On the serving thread, after its loop stopped.
    func stop() {
        collectingThread.store(0, ordering: .relaxed)
        writeEvent?.remove()
        writeEvent = nil
        writeLoop = nil
        logger = nil
        isBlocked = false
        discardAll()
    }
}
