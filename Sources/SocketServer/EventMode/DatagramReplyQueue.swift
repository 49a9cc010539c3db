import CSocketServerShims
import Glibc
import Logging
import Synchronization

/// The replies an event-mode datagram handler sends during one batch, sent together with one `sendmmsg(2)`.
///
/// Owned by the `EventMode` of a datagram server. While the serving thread handles a batch (between
/// `beginBatch()` and `endBatch(on:loop:logger:)`), `EventDatagram.reply` called on that thread appends the
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
    private var bytes: [UInt8] = []
    private var offsets: [Int] = []
    private var lengths: [Int] = []
    private var payloads: [UnsafeRawPointer?] = []
    private let addresses = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: DatagramReplyQueue.capacity)
    private var addressLengths = [UInt32](repeating: 0, count: DatagramReplyQueue.capacity)
    private var count = 0
    /// The socket refused the last send with `EAGAIN`: a write event waits for room.
    private var isBlocked = false
    private var writeEvent: LoopEvent?

    init() {
        offsets.reserveCapacity(Self.capacity)
        lengths.reserveCapacity(Self.capacity)
        payloads.reserveCapacity(Self.capacity)
    }

    deinit {
        addresses.deallocate()
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
    func beginBatch(loop: EventLoop, logger: Logger) {
        writeLoop = loop
        self.logger = logger
        collectingThread.store(UInt(pthread_self()), ordering: .relaxed)
    }

    /// Stops collecting and sends what was queued (unless a write event already waits for room).
    func endBatch(on socket: Socket) {
        collectingThread.store(0, ordering: .relaxed)
        if count > 0 && !isBlocked, let loop = writeLoop, let logger { flush(on: socket, loop: loop, logger: logger) }
    }

    /// Queues `payload` for `address`; false when the queue is full while the socket has no room (dropped).
    /// Only on the collecting thread (`isCollectingOnThisThread`).
    func append(_ payload: UnsafeRawBufferPointer, to address: SocketAddress, socket: Socket) -> Bool {
        if count == Self.capacity || bytes.count + payload.count > Self.byteLimit {
            // Full: make room by sending now, unless the socket has none either.
            guard !isBlocked, let loop = writeLoop, let logger else { return false }
            flush(on: socket, loop: loop, logger: logger)
            if count == Self.capacity || bytes.count + payload.count > Self.byteLimit { return false }
        }
        offsets.append(bytes.count)
        lengths.append(payload.count)
        bytes.append(contentsOf: payload)
        address.withSockAddr { pointer, length in
            UnsafeMutableRawPointer(addresses + count).copyMemory(from: pointer, byteCount: Int(length))
            addressLengths[count] = UInt32(length)
        }
        count += 1
        return true
    }

    /// The serving loop (the write event runs there) and the server's logger, from `beginBatch`.
    private var writeLoop: EventLoop?
    private var logger: Logger?

    /// Sends the queued replies with `sendmmsg(2)` (`MSG_DONTWAIT`; again after `EINTR`) until all are sent
    /// or the socket is full, in which case a write event on `loop` sends the rest later.
    ///
    /// `afterWaiting` (the write event fired): a first reply refused again with `EAGAIN` although the socket
    /// reported room is dropped (a Unix peer whose own queue is full: waiting for it would spin the loop).
    private func flush(on socket: Socket, loop: EventLoop, logger: Logger, afterWaiting: Bool = false) {
        let descriptor = socket.fileDescriptor
        guard descriptor >= 0 else { return discardAll() }
        var sent = 0
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            payloads.removeAll(keepingCapacity: true)
            for index in 0..<count { payloads.append(base + offsets[index]) }
        }
        if bytes.isEmpty {
            // Empty replies only: any non-null pointer will do for zero bytes.
            payloads.removeAll(keepingCapacity: true)
            for _ in 0..<count { payloads.append(UnsafeRawPointer(addresses)) }
        }
        let storageSize = MemoryLayout<sockaddr_storage>.size
        while sent < count {
            let result = payloads.withUnsafeBufferPointer { payloads in
                lengths.withUnsafeBufferPointer { lengths in
                    addressLengths.withUnsafeBufferPointer { addressLengths in
                        CSocketServerShims_send_batch(
                            descriptor, payloads.baseAddress.map { $0 + sent }, lengths.baseAddress.map { $0 + sent },
                            addresses + sent, storageSize, addressLengths.baseAddress.map { $0 + sent },
                            UInt32(count - sent), Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                    }
                }
            }
            if result > 0 {
                sent += Int(result)
                continue
            }
            let code = errno
            if result == 0 || code == EINTR { continue }
            if (code == EAGAIN || code == EWOULDBLOCK) && afterWaiting && sent == 0 {
                logger.debug("datagram reply dropped: the peer takes no more", metadata: ["socketserver.error": "EAGAIN"])
                sent = 1
                continue
            }
            if code == EAGAIN || code == EWOULDBLOCK {
                removeFirst(sent)
                waitForRoom(on: socket, loop: loop, logger: logger)
                return
            }
            // The first unsent reply was refused (ENOBUFS, an address the system rejects): it alone is dropped.
            logger.debug(
                "datagram reply dropped",
                metadata: ["socketserver.error": "\(SocketError(operation: "sendmmsg", code: code))"])
            sent += 1
        }
        discardAll()
    }

    /// Arms the one-shot write event that sends the rest once the socket has room.
    private func waitForRoom(on socket: Socket, loop: EventLoop, logger: Logger) {
        isBlocked = true
        timesBlocked.wrappingAdd(1, ordering: .relaxed)
        let event = writeEvent ?? LoopEvent(loop: loop, descriptor: socket.fileDescriptor, flags: [.write]) {
            [unowned self] _ in
            self.isBlocked = false
            self.flush(on: socket, loop: loop, logger: logger, afterWaiting: true)
        }
        writeEvent = event
        event.add()
    }

    /// Drops the first `sent` replies, keeping the rest in order.
    private func removeFirst(_ sent: Int) {
        guard sent > 0 else { return }
        let cut = sent < count ? offsets[sent] : bytes.count
        bytes.removeFirst(cut)
        offsets.removeFirst(sent)
        for index in offsets.indices { offsets[index] -= cut }
        lengths.removeFirst(sent)
        let remaining = count - sent
        for index in 0..<remaining {
            addresses[index] = addresses[index + sent]
            addressLengths[index] = addressLengths[index + sent]
        }
        count = remaining
    }

    private func discardAll() {
        bytes.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
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
