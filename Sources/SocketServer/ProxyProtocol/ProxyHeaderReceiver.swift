import Glibc

/// Reads one PROXY header off a connected socket without ever consuming a byte after it, in steps that
/// never block: the part shared by the blocking modes (which wait with `poll`) and event mode (which waits
/// on the loop).
///
/// Each step peeks at what the kernel holds (`MSG_PEEK`), asks `ProxyHeaderParser` about the bytes so far,
/// and consumes only what is proven to be header: all of it while the header is incomplete, exactly up to
/// its end once complete. Memory: the header bytes, at most `maxHeaderLength` (107 for v1).
struct ProxyHeaderReceiver {
    /// What a step found.
    enum Step {
        /// The header is complete (and consumed); the client's bytes follow in the socket.
        case complete(ProxyHeader)
        /// Nothing more to read now: wait until the socket is readable, then step again.
        case wait
    }

    private let configuration: ProxyProtocolConfiguration
    /// The header bytes consumed so far.
    private var consumed: [UInt8] = []
    /// The header's total length, once the parser knows it.
    private var totalLength: Int?

    init(configuration: ProxyProtocolConfiguration) {
        self.configuration = configuration
    }

    /// Peeks, parses and consumes what is ready on `descriptor` (a connected stream socket, blocking or not).
    /// - Throws: `ProxyProtocolError` for a bad header or end of file inside it; `SocketError` when a receive
    ///   fails (a reset).
    mutating func step(_ descriptor: Int32) throws -> Step {
        // While the length is unknown, look at enough for a v1 line or a v2 header with Unix addresses
        // (16 + 216); the parser enforces the limits.
        let room = max((totalLength ?? 232) - consumed.count, 1)
        var window = consumed
        let start = window.count
        window.appendZeros(room)
        let peeked = window.withUnsafeMutableBytes { raw -> Int in
            recv(descriptor, raw.baseAddress.map { $0 + start }, room, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
        }
        if peeked < 0 {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return .wait }
            throw SocketError(operation: "recv", code: code)
        }
        if peeked == 0 { throw ProxyProtocolError.truncatedHeader }
        window.removeLast(room - peeked)
        let outcome = try window.withUnsafeBytes { raw throws(ProxyProtocolError) in
            try ProxyHeaderParser.parse(raw, accepting: configuration.versions, maxLength: configuration.maxHeaderLength)
        }
        switch outcome {
        case .incomplete(let length):
            totalLength = length
            try consume(peeked, from: descriptor)
            consumed = window
            return .wait
        case .complete(let header, let length):
            try consume(length - consumed.count, from: descriptor)
            return .complete(header)
        }
    }

    /// Takes `count` bytes that a peek has shown are there.
    private func consume(_ count: Int, from descriptor: Int32) throws {
        guard count > 0 else { return }
        var scratch = [UInt8](repeating: 0, count: count)
        let taken = scratch.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, count, Int32(MSG_DONTWAIT)) }
        if taken < 0 { throw SocketError(operation: "recv", code: errno) }
        guard taken == count else { throw ProxyProtocolError.truncatedHeader }
    }
}
