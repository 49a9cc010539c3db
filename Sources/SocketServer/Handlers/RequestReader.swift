/// A handler's buffered input (Python's `rfile`): lines, counted reads and read-to-end over a connection or
/// over the bytes of one datagram.
///
/// Reads go through one buffer that grows only up to the line limit: `readLine` throws
/// `SocketServerError.lineTooLong` instead of buffering a line without end. Not thread-safe; one handler
/// owns it.
public final class RequestReader {
    private let socket: Socket?
    private var storage: [UInt8]
    private var head = 0
    private var tail: Int
    private var reachedEnd: Bool
    private let chunkSize: Int
    /// The longest line `readLine()` returns, newline included.
    public let maxLineLength: Int

    /// A reader over a connection, receiving up to `bufferSize` bytes per call (0: only what each read
    /// needs, so nothing past it is taken from the socket).
    public init(socket: Socket, bufferSize: Int = 8192, maxLineLength: Int = 65536) {
        self.socket = socket
        self.chunkSize = max(bufferSize, 0)
        self.maxLineLength = max(maxLineLength, 1)
        self.storage = [UInt8](repeating: 0, count: max(bufferSize, 64))
        self.tail = 0
        self.reachedEnd = false
    }

    /// A reader over bytes already received (a datagram's payload); end of file after them.
    public init(bytes: [UInt8], maxLineLength: Int = 65536) {
        self.socket = nil
        self.chunkSize = 0
        self.maxLineLength = max(maxLineLength, 1)
        self.storage = bytes
        self.tail = bytes.count
        self.reachedEnd = true
    }

    /// The bytes received but not yet read.
    public var bufferedCount: Int { tail - head }

    /// Reads one line, up to and including `\n`; at end of file the rest (possibly empty).
    /// - Throws: `SocketServerError.lineTooLong` when no newline arrives within `maxLength` bytes (default
    ///   `maxLineLength`); `SocketError` when the receive fails or times out.
    public func readLine(maxLength: Int? = nil) throws -> [UInt8] {
        let limit = min(maxLength ?? maxLineLength, maxLineLength)
        var scanned = head
        while true {
            if let newline = storage[scanned..<tail].firstIndex(of: UInt8(ascii: "\n")) {
                guard newline - head < limit else { throw SocketServerError.lineTooLong(limit: limit) }
                return take(newline + 1 - head)
            }
            guard tail - head < limit else { throw SocketServerError.lineTooLong(limit: limit) }
            scanned = tail
            let offset = scanned - head
            if try fill(wanting: 1) == 0 { return take(tail - head) }
            scanned = head + offset
        }
    }

    /// Reads one line and decodes it as UTF-8 (invalid bytes become U+FFFD), newline included.
    public func readLineString(maxLength: Int? = nil) throws -> String {
        String(decoding: try readLine(maxLength: maxLength), as: UTF8.self)
    }

    /// Reads exactly `count` bytes, or fewer only at end of file.
    public func read(_ count: Int) throws -> [UInt8] {
        let wanted = max(count, 0)
        while tail - head < wanted {
            if try fill(wanting: wanted - (tail - head)) == 0 { break }
        }
        return take(min(wanted, tail - head))
    }

    /// Reads until end of file, refusing to hold more than `maxLength` bytes.
    /// - Throws: `SocketServerError.lineTooLong` (with `maxLength`) when more arrives than that.
    public func readToEnd(maxLength: Int = 16 << 20) throws -> [UInt8] {
        while try fill(wanting: chunkSize == 0 ? 4096 : chunkSize) > 0 {
            guard tail - head <= maxLength else { throw SocketServerError.lineTooLong(limit: maxLength) }
        }
        guard tail - head <= maxLength else { throw SocketServerError.lineTooLong(limit: maxLength) }
        return take(tail - head)
    }

    /// Returns what is buffered, or waits for one receive when nothing is (Python's `read1`); empty at end.
    public func readAvailable() throws -> [UInt8] {
        if tail == head { _ = try fill(wanting: chunkSize == 0 ? 4096 : chunkSize) }
        return take(tail - head)
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
        head += count
        if head == tail {
            head = 0
            tail = 0
        }
        return bytes
    }

    /// Receives once into the buffer; returns the number of new bytes, 0 at end of file.
    private func fill(wanting wanted: Int) throws -> Int {
        guard !reachedEnd, let socket else { return 0 }
        if head > 0 && (tail == storage.count || head >= storage.count / 2) {
            storage.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                base.update(from: base + head, count: tail - head)
            }
            tail -= head
            head = 0
        }
        let request = chunkSize == 0 ? max(wanted, 1) : max(chunkSize, wanted)
        if storage.count - tail < request {
            storage.append(contentsOf: repeatElement(0, count: max(storage.count, tail + request - storage.count)))
        }
        let room = min(storage.count - tail, request)
        let received = try storage.withUnsafeMutableBytes { raw in
            try socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: raw[tail..<(tail + room)]))
        }
        if received == 0 { reachedEnd = true }
        tail += received
        return received
    }
}
