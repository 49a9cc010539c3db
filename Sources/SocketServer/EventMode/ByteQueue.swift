import Glibc

/// A first-in, first-out run of bytes in one `malloc`ed block: allocated on first use, freed when emptied.
///
/// The per-connection input and output buffers of the event mode. A connection whose handler consumes what
/// arrives and whose peer reads what is sent never allocates one, and an idle connection holds none, which
/// is what keeps an idle connection small. Not thread-safe; owned by one connection on one loop.
struct ByteQueue: ~Copyable {
    private var storage: UnsafeMutableRawPointer?
    private var capacity = 0
    private var head = 0
    private var tail = 0

    init() {}

    deinit {
        free(storage)
    }

    /// The number of bytes queued.
    var count: Int { tail - head }

    /// Whether no byte is queued.
    var isEmpty: Bool { head == tail }

    /// The queued bytes, valid until the next mutation.
    var readableBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage.map { $0 + head }, count: tail - head)
    }

    /// Appends a copy of `bytes`, growing the block when needed.
    /// - Returns: false when memory could not be allocated (nothing is appended).
    mutating func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return true }
        if capacity - tail < bytes.count {
            guard makeRoom(for: bytes.count) else { return false }
        }
        guard let storage else { return false }
        (storage + tail).copyMemory(from: source, byteCount: bytes.count)
        tail += bytes.count
        return true
    }

    /// Drops the first `count` bytes; frees the block once nothing is left.
    mutating func consume(_ count: Int) {
        head += min(max(count, 0), tail - head)
        if head == tail { release() }
    }

    /// Swaps contents with `other` (no copy): how a queued file's trailing bytes become the output's head.
    mutating func exchange(with other: inout ByteQueue) {
        (storage, other.storage) = (other.storage, storage)
        (capacity, other.capacity) = (other.capacity, capacity)
        (head, other.head) = (other.head, head)
        (tail, other.tail) = (other.tail, tail)
    }

    /// Drops everything and frees the block.
    mutating func release() {
        free(storage)
        storage = nil
        capacity = 0
        head = 0
        tail = 0
    }

    /// Moves the queued bytes to the front, or grows the block (at least doubling it) when that is not enough.
    private mutating func makeRoom(for extra: Int) -> Bool {
        let queued = tail - head
        if let storage, head > 0, capacity - queued >= extra {
            storage.copyMemory(from: storage + head, byteCount: queued)
            head = 0
            tail = queued
            return true
        }
        let wanted = max(queued + extra, capacity * 2, 256)
        if head > 0, let storage {
            storage.copyMemory(from: storage + head, byteCount: queued)
        }
        guard let grown = realloc(storage, wanted) else { return false }
        storage = grown
        capacity = wanted
        head = 0
        tail = queued
        return true
    }
}
