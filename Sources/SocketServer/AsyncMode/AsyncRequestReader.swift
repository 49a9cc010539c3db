import Glibc

/// An async handler's input (`rfile`): lines, counted reads and what is available, suspending until bytes
/// arrive. Mirrors `RequestReader`; use it only from the handler's task.
///
/// Bytes are read from the driver's buffer (bounded by `maxBufferedInput`), so a read costs no system
/// call; each returned line or chunk is one new array.
public struct AsyncRequestReader {
    let driver: AsyncConnectionDriver
    /// The longest line `readLine()` returns, newline included (the handler's `maxLineLength`).
    public var maxLineLength: Int
    /// The largest count `read(_:)` accepts (the handler's `maxReadLength`).
    public var maxReadLength: Int

    init(driver: AsyncConnectionDriver, maxLineLength: Int = 65536, maxReadLength: Int = RequestReader.defaultMaxReadLength) {
        self.driver = driver
        self.maxLineLength = max(maxLineLength, 1)
        self.maxReadLength = max(maxReadLength, 0)
    }

    /// The bytes received but not yet read (a partial line, for example). O(1); from the handler's task.
    public var bufferedCount: Int { driver.input.count }

    /// Reads one line, up to and including `\n`; at end of input the rest, possibly empty.
    /// - Throws: `SocketServerError.lineTooLong` when no newline arrives within `maxLength` bytes (default
    ///   `maxLineLength`); the connection's failure (a reset, the shutdown deadline);
    ///   `EventModeError.idleTimeout` when nothing arrived for the mode's idle timeout (the connection is
    ///   still open then, so the handler may answer before it returns; a second idle timeout closes it);
    ///   a `SocketError` with `isTimeout` when the handler's `timeout` expired while waiting (what arrived
    ///   stays buffered); `CancellationError` when the task was cancelled.
    nonisolated(nonsending) public func readLine(maxLength: Int? = nil) async throws -> [UInt8] {
        let limit = max(min(maxLength ?? maxLineLength, maxLineLength), 1)
        var scanned = 0
        while true {
            let available = driver.input.count
            if let newline = Self.newlineOffset(in: driver.input.readableBytes, from: scanned) {
                guard newline < limit else { throw SocketServerError.lineTooLong(limit: limit) }
                return take(newline + 1)
            }
            guard available < limit else { throw SocketServerError.lineTooLong(limit: limit) }
            scanned = available
            if driver.endOfInput { return take(available) }
            if try driver.prepareToWaitForInput() {
                try await withUnsafeThrowingContinuation { driver.parkReader($0) }
            }
        }
    }

    /// Reads exactly `count` bytes, or fewer only at end of input; never buffers more than the mode's input
    /// bound at once, and the result grows only as bytes arrive (a large `count` claimed by a peer costs
    /// what the peer really sends).
    /// - Throws: `SocketServerError.readLengthOutOfRange` when `count` is negative or above `maxReadLength`,
    ///   before anything is consumed; otherwise as `readLine()`. Bytes read before a failure are lost with
    ///   it.
    nonisolated(nonsending) public func read(_ count: Int) async throws -> [UInt8] {
        guard count >= 0, count <= maxReadLength else {
            throw SocketServerError.readLengthOutOfRange(count: count, limit: maxReadLength)
        }
        let wanted = count
        var result: [UInt8] = []
        while result.count < wanted {
            let available = driver.input.count
            if available > 0 {
                let taking = min(available, wanted - result.count)
                result.append(contentsOf: UnsafeRawBufferPointer(rebasing: driver.input.readableBytes[..<taking]))
                driver.consumeInput(taking)
                continue
            }
            if driver.endOfInput { break }
            if try driver.prepareToWaitForInput() {
                try await withUnsafeThrowingContinuation { driver.parkReader($0) }
            }
        }
        return result
    }

    /// Returns what is buffered, or waits for bytes when nothing is; empty at end of input.
    nonisolated(nonsending) public func readAvailable() async throws -> [UInt8] {
        while driver.input.isEmpty && !driver.endOfInput {
            if try driver.prepareToWaitForInput() {
                try await withUnsafeThrowingContinuation { driver.parkReader($0) }
            }
        }
        return take(driver.input.count)
    }

    /// The lines of the input until its end, each with its newline (the last may lack it).
    public var lines: Lines { Lines(reader: self) }

    /// The lines of an async handler's input, as an `AsyncSequence`.
    public struct Lines: AsyncSequence {
        /// Each line's bytes.
        public typealias Element = [UInt8]
        let reader: AsyncRequestReader

        /// Starts reading lines.
        public func makeAsyncIterator() -> Iterator { Iterator(reader: reader) }

        /// Reads the next line each time; nil at end of input.
        public struct Iterator: AsyncIteratorProtocol {
            let reader: AsyncRequestReader

            /// The next line, or nil at end of input.
            public mutating func next() async throws -> [UInt8]? {
                let line = try await reader.readLine()
                return line.isEmpty ? nil : line
            }
        }
    }

    /// The offset of the first `\n` at or after `start`: `memchr`, with no generic code on the hot path.
    private static func newlineOffset(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard let base = bytes.baseAddress, start < bytes.count else { return nil }
        guard let found = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start) else { return nil }
        return UnsafeRawPointer(found) - base
    }

    private func take(_ count: Int) -> [UInt8] {
        let bytes = Array(UnsafeRawBufferPointer(rebasing: driver.input.readableBytes[..<count]))
        driver.consumeInput(count)
        return bytes
    }
}
