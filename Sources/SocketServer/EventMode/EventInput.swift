import Glibc

/// The bytes a connection received and its handler has not consumed yet, seen without copying.
///
/// Handed to `EventStreamHandler.bytesReceived(_:on:)`. The views it returns point into the event loop's
/// receive buffer (or into the connection's own buffer when earlier bytes were left over) and are valid only
/// until that call returns: copy what must outlive it. Whatever the handler does not consume is kept and
/// handed again, with the bytes that arrive next, on the next call.
public struct EventInput {
    private let bytes: UnsafeRawBufferPointer
    /// How many bytes the handler has consumed so far in this call.
    public private(set) var consumedCount = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// The bytes not consumed yet. O(1), no copy.
    public var readableBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[consumedCount...])
    }

    /// The number of bytes not consumed yet.
    public var count: Int { bytes.count - consumedCount }

    /// Whether every byte has been consumed.
    public var isEmpty: Bool { consumedCount == bytes.count }

    /// Consumes and returns the next line, newline (`\n`) included; nil while no complete line is buffered.
    ///
    /// Costs one `memchr` over the unconsumed bytes. A line that never ends is bounded by the mode's
    /// `maxBufferedInput`: above it the connection is closed.
    public mutating func readLine() -> UnsafeRawBufferPointer? {
        let rest = readableBytes
        guard let start = rest.baseAddress, !rest.isEmpty else { return nil }
        guard let newline = memchr(start, Int32(UInt8(ascii: "\n")), rest.count) else { return nil }
        let length = start.distance(to: UnsafeRawPointer(newline)) + 1
        consumedCount += length
        return UnsafeRawBufferPointer(start: start, count: length)
    }

    /// Consumes and returns exactly `count` bytes; nil (consuming nothing) while fewer are buffered, and
    /// for a negative `count`.
    ///
    /// O(1), no copy, never allocates, whatever `count` is: a count taken from the peer (a length prefix)
    /// costs nothing here. The bytes the handler leaves unconsumed while it waits for them are bounded by
    /// the mode's `maxBufferedInput`: a peer that claims more than that is closed with
    /// `EventModeError.inputLimitExceeded` once it has sent that much, so check a claimed length against
    /// `maxBufferedInput` yourself to refuse it at once.
    public mutating func read(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, self.count >= count else { return nil }
        // consumedCount + count <= bytes.count: the sum cannot overflow.
        let view = UnsafeRawBufferPointer(rebasing: bytes[consumedCount..<(consumedCount + count)])
        consumedCount += count
        return view
    }

    /// Consumes and returns every unconsumed byte (possibly none).
    public mutating func readAll() -> UnsafeRawBufferPointer {
        let view = readableBytes
        consumedCount = bytes.count
        return view
    }

    /// Marks the next `count` bytes (clamped to 0 ... `count` of the unconsumed bytes) as consumed without
    /// looking at them. O(1).
    public mutating func consume(_ count: Int) {
        consumedCount += min(max(count, 0), self.count)
    }
}
