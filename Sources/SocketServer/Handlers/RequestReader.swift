import Glibc
import Synchronization

/// A handler's buffered input (Python's `rfile`): lines, counted reads and read-to-end over a connection or
/// over the bytes of one datagram.
///
/// Every read goes through one buffer that grows only as bytes arrive: one receive asks for at most
/// `max(bufferSize, 64 KiB)` bytes, so memory follows what the peer actually sent, never a count it
/// claimed. Each kind of read has a bound, and a read past it throws instead of buffering without end:
/// `readLine` (`maxLineLength`, `SocketServerError.lineTooLong`), `read(_:)` (`maxReadLength`,
/// `SocketServerError.readLengthOutOfRange`) and `readToEnd` (its `maxLength`,
/// `SocketServerError.inputTooLong`). A hostile length prefix therefore costs at most the bytes the peer
/// sends before end of file, and a thrown error ends only that request.
///
/// Not thread-safe: one handler owns it, and uses it from the thread that runs the handler.
public final class RequestReader {
    /// The largest `bufferSize` a reader uses (1 MiB); a larger one is clamped to it.
    public static let maxBufferSize = 1 << 20
    /// The default `maxReadLength` of a connection's reader: 16 MiB, as `readToEnd`'s default limit.
    public static let defaultMaxReadLength = 16 << 20
    /// The most one receive asks for on behalf of a read wanting more than `bufferSize` bytes.
    static let receiveStep = 64 * 1024
    /// The first buffer of a connection's reader, and the free room below which a receive grows the buffer
    /// to its full request instead of taking what fits. A buffer made and zeroed at its full 64 KiB was the
    /// largest cost of a short connection (8,200 instructions, and 16 pages touched in a forked child).
    static let initialReceive = 4096
    /// The `socket` of every reader over a datagram's bytes: closed from the start (descriptor -1).
    private static let noConnection = Socket(adopting: -1, family: .unspecified, type: .stream)

    /// The connection; for a reader over a datagram's bytes a closed placeholder, never received from
    /// (`receives` is false). Not an optional: a receive through a `let` of a class type needs no retain
    /// of the socket, an unwrapped optional does.
    private let socket: Socket
    /// Whether reads receive from `socket` (false for a reader over bytes already received).
    private let receives: Bool
    // The reader is used by one thread at a time (its handler's), and no method holds an access to these
    // across a call that could come back into the reader, so the runtime's exclusivity checks (about 75
    // instructions each, several per line read) are switched off for them.
    @exclusivity(unchecked) private var storage: [UInt8]
    @exclusivity(unchecked) private var head = 0
    @exclusivity(unchecked) private var tail: Int
    @exclusivity(unchecked) private var reachedEnd: Bool
    /// Whether the last receive took all it asked for (see `fill`).
    @exclusivity(unchecked) private var lastReceiveFilledRoom = false
    private let chunkSize: Int
    private let initialCapacity: Int
    /// The longest line `readLine()` returns, newline included (at least 1).
    public let maxLineLength: Int
    /// The largest count `read(_:)` accepts; a larger one throws before anything is received. `Int.max`
    /// for a reader over a datagram, whose reads never receive.
    public let maxReadLength: Int

    /// A reader over a connection.
    ///
    /// - Parameters:
    ///   - socket: the connection; the reader receives from it and never closes it.
    ///   - bufferSize: bytes asked for per receive, 0 ... `maxBufferSize` (clamped); 0 receives only what
    ///     each read needs, so nothing past it is taken from the socket. The buffer starts at
    ///     `min(bufferSize, 4 KiB)` and grows to it as bytes arrive (a receive takes what fits while at
    ///     least 4 KiB is free), so a connection that sends little costs little.
    ///   - maxLineLength: the longest line `readLine()` returns (clamped to at least 1).
    ///   - maxReadLength: the largest count `read(_:)` accepts (clamped to at least 0). A read for less only
    ///     ever holds the bytes that arrived, so this bounds what a peer that really sends that much costs.
    public init(
        socket: Socket,
        bufferSize: Int = 8192,
        maxLineLength: Int = 65536,
        maxReadLength: Int = RequestReader.defaultMaxReadLength
    ) {
        self.socket = socket
        self.receives = true
        self.chunkSize = min(max(bufferSize, 0), Self.maxBufferSize)
        self.maxLineLength = max(maxLineLength, 1)
        self.maxReadLength = max(maxReadLength, 0)
        self.initialCapacity = min(max(chunkSize, 64), Self.initialReceive)
        self.storage = [UInt8](repeating: 0, count: initialCapacity)
        self.tail = 0
        self.reachedEnd = false
    }

    /// A reader over bytes already received (a datagram's payload); end of file after them. Its reads copy
    /// out of `bytes` and never receive, so `maxReadLength` is `Int.max`.
    public init(bytes: [UInt8], maxLineLength: Int = 65536) {
        self.socket = Self.noConnection
        self.receives = false
        self.chunkSize = 0
        self.maxLineLength = max(maxLineLength, 1)
        self.maxReadLength = .max
        self.initialCapacity = 0
        self.storage = bytes
        self.tail = bytes.count
        self.reachedEnd = true
    }

    /// The connection's descriptor (Python's `rfile.fileno()`), -1 once it is closed and for a reader over
    /// a datagram's bytes. O(1), from any thread.
    public var fileDescriptor: Int32 { receives ? socket.fileDescriptor : -1 }

    /// The bytes received but not yet read. O(1).
    public var bufferedCount: Int { tail - head }

    /// Reads one line, up to and including `\n`; at end of file the rest (possibly empty).
    ///
    /// Buffers at most about `limit` bytes plus one receive. Each line is a new array (an allocation and a
    /// copy); a handler reading many lines can reuse one array with `readLine(into:maxLength:)` instead.
    /// - Parameter maxLength: a lower limit than `maxLineLength` for this line (clamped to
    ///   1 ... `maxLineLength`).
    /// - Throws: `SocketServerError.lineTooLong` when no newline arrives within the limit (the bytes stay
    ///   buffered); `SocketError` when the receive fails or times out.
    public func readLine(maxLength: Int? = nil) throws -> [UInt8] {
        take(try nextLineLength(maxLength: maxLength))
    }

    /// Reads one line into `line`, replacing what it held: the same bytes `readLine(maxLength:)` returns
    /// (up to and including `\n`; at end of file the rest, possibly empty), without a new array per line.
    ///
    /// `line` keeps its capacity, so a handler that passes the same array for every line of a connection
    /// allocates only when a line is longer than any before it (at most `maxLineLength` bytes); each line
    /// costs one copy out of the reader's buffer.
    ///
    /// ```swift
    /// var line: [UInt8] = []
    /// while try rfile.readLine(into: &line) > 0 {
    ///     try wfile.write(line)
    /// }
    /// ```
    /// - Parameters:
    ///   - line: receives the line; left as it was when this throws.
    ///   - maxLength: a lower limit than `maxLineLength` for this line (clamped to 1 ... `maxLineLength`).
    /// - Returns: the line's length, newline included: 0 only at end of file.
    /// - Throws: as `readLine(maxLength:)`: `SocketServerError.lineTooLong` (the bytes stay buffered),
    ///   `SocketError` when the receive fails or times out.
    @discardableResult
    public func readLine(into line: inout [UInt8], maxLength: Int? = nil) throws -> Int {
        let count = try nextLineLength(maxLength: maxLength)
        storage.withUnsafeBufferPointer { buffer in
            line.replaceSubrange(line.startIndex..<line.endIndex, with: UnsafeBufferPointer(rebasing: buffer[head..<(head + count)]))
        }
        consume(count)
        return count
    }

    /// The length of the next line (newline included; at end of file what is left, possibly 0), receiving
    /// until it is buffered. Consumes nothing.
    private func nextLineLength(maxLength: Int?) throws -> Int {
        let limit = max(min(maxLength ?? maxLineLength, maxLineLength), 1)
        var scanned = head
        while true {
            if let newline = Self.newline(in: storage, from: scanned, to: tail) {
                guard newline - head < limit else { throw SocketServerError.lineTooLong(limit: limit) }
                return newline - head + 1
            }
            guard bufferedCount < limit else { throw SocketServerError.lineTooLong(limit: limit) }
            // Compaction in `fill` moves the bytes: remember how far the scan got, relative to `head`.
            let scannedCount = tail - head
            if try fill(wanting: 1) == 0 { return bufferedCount }
            scanned = head + scannedCount
        }
    }

    /// The index of the first `\n` in `bytes[start..<end]`, found with memchr (a slice's `firstIndex(of:)`
    /// costs several instructions a byte).
    private static func newline(in bytes: [UInt8], from start: Int, to end: Int) -> Int? {
        guard start < end else { return nil }
        return bytes.withUnsafeBufferPointer { buffer -> Int? in
            guard let base = buffer.baseAddress, let found = memchr(base + start, 0x0A, end - start) else { return nil }
            return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// Reads one line and decodes it as UTF-8 (invalid bytes become U+FFFD), newline included.
    /// - Throws: as `readLine(maxLength:)`.
    public func readLineString(maxLength: Int? = nil) throws -> String {
        String(decoding: try readLine(maxLength: maxLength), as: UTF8.self)
    }

    /// Reads exactly `count` bytes, or fewer only at end of file.
    ///
    /// The buffer grows with the bytes as they arrive, one bounded receive at a time, so a count taken from
    /// the peer (a length prefix) costs what the peer really sends, not what it claims.
    /// - Throws: `SocketServerError.readLengthOutOfRange` for a negative count or one above
    ///   `maxReadLength`, before anything is received; `SocketError` when a receive fails or times out.
    public func read(_ count: Int) throws -> [UInt8] {
        guard count >= 0, count <= maxReadLength else {
            throw SocketServerError.readLengthOutOfRange(count: count, limit: maxReadLength)
        }
        while bufferedCount < count {
            if try fill(wanting: count - bufferedCount) == 0 { break }
        }
        return take(min(count, bufferedCount))
    }

    /// Reads until end of file, refusing to hold more than `maxLength` bytes (clamped to at least 0).
    ///
    /// Buffers at most `maxLength` bytes plus one receive.
    /// - Throws: `SocketServerError.inputTooLong` (with `maxLength`) when more than that arrives;
    ///   `SocketError` when a receive fails or times out.
    public func readToEnd(maxLength: Int = 16 << 20) throws -> [UInt8] {
        let limit = max(maxLength, 0)
        while true {
            guard bufferedCount <= limit else { throw SocketServerError.inputTooLong(limit: limit) }
            // Ask for one byte past the limit (at most one step), so that a peer sending more is caught.
            let wanted = min(limit - bufferedCount, Self.receiveStep - 1) + 1
            if try fill(wanting: wanted) == 0 { break }
        }
        return take(bufferedCount)
    }

    /// Returns what is buffered, or waits for one receive when nothing is (Python's `read1`); empty at end.
    /// - Throws: `SocketError` when the receive fails or times out.
    public func readAvailable() throws -> [UInt8] {
        if tail == head { _ = try fill(wanting: chunkSize == 0 ? 4096 : chunkSize) }
        return take(bufferedCount)
    }

    /// Drops the buffer; later reads return end of file. The connection stays open.
    public func close() {
        storage = []
        head = 0
        tail = 0
        reachedEnd = true
    }

    private func take(_ count: Int) -> [UInt8] {
        let bytes = Array(storage[head..<(head + count)])
        consume(count)
        return bytes
    }

    /// Drops the first `count` buffered bytes (all of them read).
    private func consume(_ count: Int) {
        head += count
        if head == tail {
            head = 0
            tail = 0
            // A large read grew the buffer: give the memory back rather than keep it for the connection's life.
            if receives && storage.count > max(initialCapacity, Self.receiveStep) * 4 {
                storage = [UInt8](repeating: 0, count: initialCapacity)
            }
        }
    }

    /// How much one receive asks for when a read still wants `wanted` bytes: at least one byte, at most
    /// `max(chunkSize, receiveStep)`.
    private func receiveSize(wanting wanted: Int) -> Int {
        let step = min(max(wanted, 1), Self.receiveStep)
        return chunkSize == 0 ? step : max(chunkSize, step)
    }

    /// Receives once into the buffer, growing it by at most one receive; returns the number of new bytes,
    /// 0 at end of file.
    private func fill(wanting wanted: Int) throws -> Int {
        guard !reachedEnd, receives else { return 0 }
        var request = receiveSize(wanting: wanted)
        if head > 0 && (storage.count - tail < request || head >= storage.count / 2) {
            storage.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                base.update(from: base + head, count: tail - head)
            }
            tail -= head
            head = 0
        }
        let room = storage.count - tail
        if chunkSize > 0 && room >= Self.initialReceive && !lastReceiveFilledRoom {
            // Room enough: this receive takes what fits (`bufferSize` is the most one receive asks for). Once
            // a receive filled it (the peer sends more than fits), the next one grows the buffer instead.
            request = min(request, room)
        }
        if room < request {
            // At least doubling keeps the growth amortised O(1) a byte; it still follows the bytes that arrive
            // (one receive at a time), never a length the client announced.
            storage.appendZeros(Swift.max(request - room, storage.count))
        }
        let received = try storage.withUnsafeMutableBytes { raw in
            try socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: raw[tail..<(tail + request)]))
        }
        if received == 0 { reachedEnd = true }
        lastReceiveFilledRoom = received == request
        socket.readerBytes.wrappingAdd(received, ordering: .relaxed)
        tail += received
        return received
    }
}
