import CSocketServerShims
import Glibc

/// A part of an open file to send on a connection with `sendfile(2)`: the kernel copies it from the page
/// cache to the socket, with no read into user space.
///
/// Give it to `RequestWriter.sendFile(_:after:)` (blocking handlers), `EventConnection.sendFile(_:after:)`
/// (event mode) or `AsyncRequestWriter.sendFile(_:after:)` (async handlers). The region does not own the
/// descriptor: `owner`, when given, is retained for as long as the region (or a connection that queued it)
/// needs the descriptor, so an object that closes its descriptor in `deinit` keeps it open until the region
/// is sent.
/// Without an owner the caller keeps the descriptor open until the send has finished (for an event
/// connection: until the connection closes or `bufferedOutputCount` says it is sent).
public struct FileRegion: Sendable {
    /// The open file, readable and `mmap`-able (a regular file; not a pipe or socket).
    public let descriptor: Int32
    /// Where the bytes to send start in the file.
    public private(set) var offset: Int
    /// How many bytes are still to send.
    public private(set) var count: Int
    /// Kept alive while the region is in use (the object that closes `descriptor`).
    public let owner: (any AnyObject & Sendable)?

    /// The `count` bytes of `descriptor` from `offset`.
    ///
    /// - Parameters:
    ///   - descriptor: an open regular file.
    ///   - offset: the first byte to send; negative values count as 0.
    ///   - count: how many bytes to send; negative values count as 0.
    ///   - owner: an object retained with the region, typically the one that closes the descriptor.
    public init(descriptor: Int32, offset: Int, count: Int, owner: (any AnyObject & Sendable)? = nil) {
        self.descriptor = descriptor
        self.offset = max(offset, 0)
        self.count = max(count, 0)
        self.owner = owner
    }

    /// Whether nothing is left to send.
    public var isEmpty: Bool { count == 0 }

    /// Reads what is left with `pread`, 64 KiB at a time, handing each chunk to `body`, and moves past it:
    /// the path for a connection that a security layer (TLS) carries, which `sendfile` would bypass.
    /// - Throws: `FileRegionError.fileShrank` when the file ends early, `SocketError` from `pread`, and
    ///   what `body` throws.
    mutating func copyChunks(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var chunk = [UInt8](repeating: 0, count: min(max(count, 1), 64 * 1024))
        while count > 0 {
            let wanted = min(count, chunk.count)
            let read = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, wanted, off_t(offset)) }
            if read < 0 {
                if errno == EINTR { continue }
                throw SocketError(operation: "pread", code: errno)
            }
            if read == 0 { throw FileRegionError.fileShrank(missing: count) }
            try chunk.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<read])) }
            offset += read
            count -= read
        }
    }

    /// Reads the next bytes of what is left with one `pread` into `buffer` and moves past them: the path for a
    /// connection that a security layer (TLS) carries, a chunk at a time as the socket takes the output.
    /// - Returns: the bytes read (at most `buffer.count`; 0 only for an empty region).
    /// - Throws: `FileRegionError.fileShrank` when the file ends early, `SocketError` from `pread`.
    mutating func readChunk(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard count > 0 else { return 0 }
        while true {
            let read = pread(descriptor, buffer.baseAddress, min(count, buffer.count), off_t(offset))
            if read < 0 {
                if errno == EINTR { continue }
                throw SocketError(operation: "pread", code: errno)
            }
            if read == 0 { throw FileRegionError.fileShrank(missing: count) }
            offset += read
            count -= read
            return read
        }
    }

    /// One `sendfile(2)` of what is left to `socket`; returns the bytes sent and moves past them.
    ///
    /// - Returns: the bytes sent; nil when the socket would block (a non-blocking socket that is full).
    /// - Throws: `SocketError` for a failed send (`EPIPE`, `ECONNRESET`, `ETIMEDOUT` when a blocking socket's
    ///   send timeout expired) and `FileRegionError.fileShrank` when the file ended before the region did.
    mutating func sendOnce(to socket: Int32, timeoutIsSet: Bool) throws -> Int? {
        guard count > 0 else { return 0 }
        // One call sends at most about 2 GiB on Linux anyway; ask for no more than a send buffer's worth
        // times a few, so that a blocking sender notices a timeout between calls.
        let wanted = min(count, 1 << 30)
        var position = Int64(offset)
        while true {
            let sent = CSocketServerShims_sendfile(socket, descriptor, &position, wanted)
            if sent > 0 {
                let taken = Int(sent)
                offset += taken
                count -= taken
                return taken
            }
            if sent == 0 { throw FileRegionError.fileShrank(missing: count) }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK {
                if timeoutIsSet { throw SocketError(operation: "sendfile", code: ETIMEDOUT) }
                return nil
            }
            throw SocketError(operation: "sendfile", code: code)
        }
    }
}

/// Why a `FileRegion` could not be sent whole.
public enum FileRegionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file ended `missing` bytes before the region did (it was truncated while being sent). The peer
    /// got a short body; close the connection so that it does not take it for a whole one.
    case fileShrank(missing: Int)

    /// A sentence saying what went wrong.
    public var description: String {
        switch self {
        case .fileShrank(let missing): "the file ended \(missing) bytes before the region being sent"
        }
    }
}
