import Glibc
import Synchronization

/// A handler's output (Python's `wfile`): every write is sent whole or throws.
///
/// Three shapes, chosen by the handler: unbuffered over a connection (each `write` is a send-all, Python's
/// `_SocketWriter`), buffered over a connection (bytes collect until `bufferSize` and go out on `flush()`),
/// or in memory (a datagram reply, sent by the handler's `finish()`). Not thread-safe; one handler owns it.
public final class RequestWriter {
    /// The connection; for an in-memory writer a closed placeholder, never sent on (`isInMemory`). Not an
    /// optional: a send through a `let` of a class type needs no retain of the socket, an unwrapped
    /// optional does (about 40 instructions a write).
    private let socket: Socket
    /// Whether this writer only collects bytes (`init()`), with no connection.
    private let isInMemory: Bool
    private let bufferSize: Int
    // One thread at a time and no access held across a call back into the writer (as `RequestReader`): no
    // runtime exclusivity checks on the per-write state.
    @exclusivity(unchecked) private var pending: [UInt8] = []
    /// Whether `close()` has run; writes then throw.
    @exclusivity(unchecked) public private(set) var isClosed = false

    /// The most a buffered writer reserves up front (64 KiB); a larger buffer grows as bytes are written.
    static let maxReservedCapacity = 64 * 1024
    /// The `socket` of every in-memory writer: closed from the start (descriptor -1) and never used.
    private static let noConnection = Socket(adopting: -1, family: .unspecified, type: .stream)

    /// A writer to a connection; `bufferSize` 0 (or less) sends on every write (the default, as in
    /// Python). A buffered writer reserves at most 64 KiB up front and holds at most `bufferSize` bytes
    /// between sends, whatever the size (`Int.max` sends only on `flush()`).
    public init(socket: Socket, bufferSize: Int = 0) {
        self.socket = socket
        self.isInMemory = false
        self.bufferSize = max(bufferSize, 0)
        if self.bufferSize > 0 { pending.reserveCapacity(min(self.bufferSize, Self.maxReservedCapacity)) }
    }

    /// A writer that only collects bytes in memory (read them back with `bytes`).
    public init() {
        self.socket = Self.noConnection
        self.isInMemory = true
        self.bufferSize = Int.max
    }

    /// What was written and not yet sent (for an in-memory writer: everything written).
    public var bytes: [UInt8] { pending }

    /// The connection's descriptor (Python's `wfile.fileno()`), the same as the handler's
    /// `connection.fileDescriptor`; -1 once the connection is closed and for an in-memory (datagram reply)
    /// writer. O(1), from any thread.
    public var fileDescriptor: Int32 { isInMemory ? -1 : socket.fileDescriptor }

    /// Writes all of `bytes`.
    /// - Throws: `SocketError` when the peer went away; `SocketServerError.writerClosed` after `close()`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !isClosed else { throw SocketServerError.writerClosed }
        guard !isInMemory else {
            pending.append(contentsOf: bytes)
            return
        }
        if bufferSize == 0 {
            try socket.sendAll(bytes)
            socket.writerBytes.wrappingAdd(bytes.count, ordering: .relaxed)
            return
        }
        // `bufferSize - pending.count` cannot overflow (0 <= pending.count <= bufferSize); the sum could.
        if bytes.count > bufferSize - pending.count { try flush() }
        if bytes.count >= bufferSize {
            try socket.sendAll(bytes)
            socket.writerBytes.wrappingAdd(bytes.count, ordering: .relaxed)
        } else {
            pending.append(contentsOf: bytes)
        }
    }

    /// Writes all of `bytes`.
    ///
    /// An in-memory writer that holds nothing yet keeps `bytes` itself (copy-on-write, no copy and no
    /// allocation): a datagram echoed back whole costs no buffer.
    public func write(_ bytes: [UInt8]) throws {
        if isInMemory && pending.isEmpty && !isClosed {
            pending = bytes
            return
        }
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: ArraySlice<UInt8>) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Writes `string` as UTF-8.
    public func write(_ string: String) throws {
        var string = string
        try string.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Sends what is buffered. Does nothing for an unbuffered or in-memory writer.
    public func flush() throws {
        guard !isInMemory, !pending.isEmpty else { return }
        defer { pending.removeAll(keepingCapacity: true) }
        try pending.withUnsafeBytes { try socket.sendAll($0) }
        socket.writerBytes.wrappingAdd(pending.count, ordering: .relaxed)
    }

    /// Sends `header`, then `region` of a file with `sendfile(2)` (no copy through user space), after what
    /// is buffered.
    ///
    /// The buffered bytes and `header` (a response head) are flagged `MSG_MORE`, so a small response leaves
    /// in one segment with the file's first bytes. Blocks until the whole region is sent, one `sendfile`
    /// call per send buffer's worth; the connection's send timeout and `deadline` apply to each call. An
    /// in-memory writer appends `header` and reads the region into its bytes instead. Call it from the
    /// handler's thread, as every writer method.
    /// - Parameters:
    ///   - region: the part of the file to send.
    ///   - header: bytes to send first (a response head); empty by default.
    /// - Throws: `SocketError` when the peer went away or the send timed out; `FileRegionError.fileShrank`
    ///   when the file ended early (the peer got a short body: close the connection);
    ///   `SocketServerError.writerClosed` after `close()`.
    public func sendFile(_ region: FileRegion, after header: [UInt8] = []) throws {
        guard !isClosed else { throw SocketServerError.writerClosed }
        var region = region
        guard !isInMemory else {
            pending.append(contentsOf: header)
            try appendContents(of: &region)
            return
        }
        if socket.isSecured {
            // A security layer (TLS) must see every byte: read the file in chunks and send them through it.
            pending.append(contentsOf: header)
            try flush()
            try region.copyChunks { chunk in
                try socket.sendAll(chunk)
                socket.writerBytes.wrappingAdd(chunk.count, ordering: .relaxed)
            }
            return
        }
        let moreComing = !region.isEmpty
        if !pending.isEmpty {
            defer { pending.removeAll(keepingCapacity: true) }
            try pending.withUnsafeBytes { try socket.sendAll($0, moreComing: moreComing || !header.isEmpty) }
            socket.writerBytes.wrappingAdd(pending.count, ordering: .relaxed)
        }
        try header.withUnsafeBytes { try socket.sendAll($0, moreComing: moreComing) }
        // The socket's deadline (`requestTimeout`) and send timeout apply to every call.
        let fileBytes = region.count
        try socket.sendAll(&region)
        socket.writerBytes.wrappingAdd(header.count &+ fileBytes, ordering: .relaxed)
    }

    /// Reads `region` into `pending` (an in-memory writer), with `pread`.
    private func appendContents(of region: inout FileRegion) throws {
        var offset = region.offset
        var remaining = region.count
        var chunk = [UInt8](repeating: 0, count: min(remaining, 64 * 1024))
        while remaining > 0 {
            let wanted = min(remaining, chunk.count)
            let count = chunk.withUnsafeMutableBytes { pread(region.descriptor, $0.baseAddress, wanted, off_t(offset)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw FileRegionError.fileShrank(missing: remaining) }
            pending.append(contentsOf: chunk[..<count])
            offset += count
            remaining -= count
        }
    }

    /// Stops further writes, dropping anything not flushed. The connection stays open.
    public func close() {
        isClosed = true
        if !isInMemory { pending = [] }
    }
}
