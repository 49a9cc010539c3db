import CSocketServerShims
import Glibc

/// The datagrams one `recvmmsg(2)` brought in for a `UDPServer`, handed out one request at a time.
///
/// Owned by its server and used only on the serving thread (in `getRequest`). It holds one receive buffer
/// of `capacity` slots of `slotSize` bytes, allocated once (at most about 4 MiB: fewer slots for large
/// `maxPacketSize`), and one reusable packet array: each request's packet is copied into that array,
/// which keeps its storage as long as no handler kept the previous packet, so a datagram handled where it
/// was received (synchronous and event modes) costs no heap allocation.
final class DatagramReceiveBatch {
    /// The most datagrams one readiness takes in event and synchronous modes.
    static let defaultCapacity = 32
    /// The most bytes the receive buffer takes; fewer slots for a large `maxPacketSize`.
    static let bufferLimit = 4 << 20

    /// The bytes kept of each datagram (the server's `maxPacketSize` when this batch was made).
    let slotSize: Int
    /// The number of slots.
    let capacity: Int
    private let buffer: UnsafeMutableRawPointer
    private let addresses: UnsafeMutablePointer<sockaddr_storage>
    private let addressLengths: UnsafeMutablePointer<UInt32>
    private let lengths: UnsafeMutablePointer<Int>
    /// The prepared `recvmmsg` headers (`CSocketServerShims_receive_batch_create`).
    private let headers: UnsafeMutableRawPointer
    // Serving-thread state only (see the type's documentation): no runtime exclusivity checks.
    @exclusivity(unchecked) private var received = 0
    @exclusivity(unchecked) private var next = 0
    @exclusivity(unchecked) private var packet: [UInt8] = []
    /// The most datagrams one receive brought in so far (for the tests).
    @exclusivity(unchecked) private(set) var largestReceived = 0

    /// A batch for datagrams of at most `slotSize` bytes (at least 1), or nil when `slotSize` is not positive.
    init?(slotSize: Int) {
        guard slotSize > 0 else { return nil }
        self.slotSize = slotSize
        capacity = max(1, min(Self.defaultCapacity, Self.bufferLimit / slotSize))
        // capacity * slotSize ≤ max(bufferLimit, slotSize): no overflow.
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity * slotSize, alignment: 16)
        addresses = .allocate(capacity: capacity)
        addressLengths = .allocate(capacity: capacity)
        lengths = .allocate(capacity: capacity)
        guard let headers = CSocketServerShims_receive_batch_create(
            buffer, slotSize, addresses, MemoryLayout<sockaddr_storage>.size, UInt32(capacity))
        else {
            buffer.deallocate()
            addresses.deallocate()
            addressLengths.deallocate()
            lengths.deallocate()
            return nil
        }
        self.headers = headers
        packet.reserveCapacity(slotSize)
    }

    deinit {
        CSocketServerShims_receive_batch_free(headers)
        buffer.deallocate()
        addresses.deallocate()
        addressLengths.deallocate()
        lengths.deallocate()
    }

    /// Whether datagrams received earlier wait to be handed out.
    var hasPending: Bool { next < received }

    /// Receives up to `limit` datagrams (at most `capacity`) with one `recvmmsg(2)` and `MSG_DONTWAIT` (again
    /// only after `EINTR`); call only when nothing is pending.
    /// - Throws: `SocketError` (`EAGAIN` when nothing is queued), which the serving loop swallows.
    func receive(on descriptor: Int32, limit: Int) throws {
        let count = UInt32(max(1, min(limit, capacity)))
        while true {
            let result = CSocketServerShims_receive_batch(
                headers, descriptor, count, Int32(MSG_DONTWAIT), lengths, addressLengths)
            if result >= 0 {
                received = Int(result)
                next = 0
                if received > largestReceived { largestReceived = received }
                return
            }
            let code = errno
            if code == EINTR { continue }
            throw SocketError(operation: "recvmmsg", code: code == EWOULDBLOCK ? EAGAIN : code)
        }
    }

    /// The next pending datagram and its sender; only while `hasPending`. The packet shares the batch's
    /// reusable array (copy-on-write: a handler that keeps it keeps its own).
    func take() -> ([UInt8], SocketAddress) {
        let index = next
        next += 1
        let length = min(lengths[index], slotSize)
        let bytes = UnsafeRawBufferPointer(start: buffer + index * slotSize, count: length)
        if length > 0 && packet.count == length {
            // As long as the previous one (fixed-size datagrams): overwritten in place, copied first only
            // when a handler kept the previous packet.
            packet.withUnsafeMutableBytes { $0.copyMemory(from: bytes) }
        } else {
            packet.replaceSubrange(packet.startIndex..<packet.endIndex, with: bytes)
        }
        let addressLength = min(addressLengths[index], UInt32(MemoryLayout<sockaddr_storage>.size))
        return (packet, SocketAddress(storage: addresses[index], length: addressLength))
    }

    /// Forgets what is pending (a serving loop that stopped on an error).
    func discardPending() {
        received = 0
        next = 0
    }
}
