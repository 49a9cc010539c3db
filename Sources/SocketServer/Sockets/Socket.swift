import CSocketServerShims
import Glibc
import Synchronization

/// An owned socket descriptor: the `request` of a stream server, the listening socket of every server.
///
/// Python's `socket.socket`, reduced to what servers and handlers use. Every call retries `EINTR`; sends
/// use `MSG_NOSIGNAL`, so a vanished peer is a `SocketError` (`EPIPE`/`ECONNRESET`), never a SIGPIPE.
/// The descriptor is closed by `close()` or, as a backstop, when the last reference goes away. `close()` is
/// safe to call twice and from any thread.
///
/// Sockets are blocking unless asked otherwise (`nonBlocking:` at creation or accept, `setNonBlocking`);
/// `isNonBlocking` remembers which, so callers need no `fcntl` to find out.
public final class Socket: @unchecked Sendable {
    private let descriptor: Atomic<Int32>
    private let nonBlockingFlag: Atomic<Bool>
    private let timeoutStorage = SanitizedMutex<Duration?>(nil)
    private let deadlineStorage = SanitizedMutex<ContinuousClock.Instant?>(nil)
    /// Whether `deadline` is set: the one load a receive or send pays when it is not.
    private let hasDeadline = Atomic(false)
    /// The security layer (TLS), if any; see `transport`.
    private let transportStorage = SanitizedMutex<(any SocketTransport)?>(nil)
    /// Whether `transport` is set: receives and sends of a plain socket take no lock for it.
    private let hasTransport = Atomic(false)
    /// Bytes a `RequestReader` received and a `RequestWriter` sent on this connection (after TLS: the
    /// application's bytes), for `ServerObserver.connectionClosed` in the blocking modes. One relaxed
    /// atomic add per receive or send call; wrapping.
    package let readerBytes = Atomic<Int>(0)
    package let writerBytes = Atomic<Int>(0)
    /// When the connection was accepted, for an observer (`ObservedConnection`): nanoseconds after its origin,
    /// 0 when not recorded.
    package let observedOpenedAt = Atomic<Int>(0)
    /// Whether a handler parked this socket's connection (`ObservedConnection.handOver`): its run reports no
    /// close, the parked connection will.
    package let observedParked = Atomic<Bool>(false)

    /// The address family the socket was created with.
    public let family: AddressFamily
    /// Stream or datagram.
    public let type: SocketType

    /// Creates a new socket (close-on-exec): one `socket(2)` call, from any thread.
    ///
    /// - Parameters:
    ///   - family: IPv4, IPv6 or Unix.
    ///   - type: stream or datagram.
    ///   - nonBlocking: true sets `O_NONBLOCK` in the same call (`SOCK_NONBLOCK`): calls that would wait
    ///     throw `EAGAIN` instead. Stream servers create their listening sockets this way.
    /// - Throws: `SocketError` from `socket(2)`, for example `EMFILE`.
    public init(family: AddressFamily, type: SocketType, nonBlocking: Bool = false) throws {
        var flags = type.rawValue | Int32(SOCK_CLOEXEC.rawValue)
        if nonBlocking { flags |= Int32(SOCK_NONBLOCK.rawValue) }
        let fd = Glibc.socket(family.rawValue, flags, 0)
        guard fd >= 0 else { throw SocketError.lastError("socket") }
        self.descriptor = Atomic(fd)
        self.nonBlockingFlag = Atomic(nonBlocking)
        self.family = family
        self.type = type
    }

    /// Takes ownership of an open descriptor (for example one returned by `accept`). No system call.
    ///
    /// - Parameters:
    ///   - fd: the open descriptor; closed by this socket from now on.
    ///   - family: the descriptor's address family.
    ///   - type: stream or datagram.
    ///   - nonBlocking: whether `O_NONBLOCK` is already set on `fd`; it only sets `isNonBlocking` and
    ///     changes nothing on the descriptor.
    public init(adopting fd: Int32, family: AddressFamily, type: SocketType, nonBlocking: Bool = false) {
        self.descriptor = Atomic(fd)
        self.nonBlockingFlag = Atomic(nonBlocking)
        self.family = family
        self.type = type
    }

    deinit {
        close()
    }

    /// The descriptor, or -1 once closed (Python's `fileno()`).
    public var fileDescriptor: Int32 { descriptor.load(ordering: .acquiring) }

    /// Whether `close()` has run.
    public var isClosed: Bool { fileDescriptor < 0 }

    /// Closes the descriptor once; later calls do nothing.
    public func close() {
        let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 { _ = Glibc.close(fd) }
    }

    /// Gives up ownership without closing: returns the descriptor and leaves this socket closed.
    public func detach() -> Int32 {
        descriptor.exchange(-1, ordering: .acquiringAndReleasing)
    }

    /// Which direction `shutdown(_:)` closes.
    public enum ShutdownDirection: Sendable {
        /// No more receives.
        case read
        /// No more sends: the peer reads end of file.
        case write
        /// Both.
        case both
    }

    /// Half-closes or fully shuts down the connection (the descriptor stays open).
    public func shutdown(_ direction: ShutdownDirection) throws {
        let how: Int32 =
            switch direction {
            case .read: Int32(SHUT_RD)
            case .write: Int32(SHUT_WR)
            case .both: Int32(SHUT_RDWR)
            }
        guard Glibc.shutdown(try openDescriptor("shutdown"), how) == 0 else { throw SocketError.lastError("shutdown") }
    }

    /// Binds to `address`.
    public func bind(to address: SocketAddress) throws {
        let fd = try openDescriptor("bind")
        let result = address.withSockAddr { Glibc.bind(fd, $0, $1) }
        guard result == 0 else { throw SocketError.lastError("bind") }
    }

    /// Starts listening with a backlog of `backlog` connections.
    public func listen(backlog: Int) throws {
        guard Glibc.listen(try openDescriptor("listen"), Int32(clamping: backlog)) == 0 else {
            throw SocketError.lastError("listen")
        }
    }

    /// Connects to `address` (used by clients and tests); blocks until connected on a blocking socket.
    ///
    /// A `connect(2)` interrupted by a signal keeps connecting in the kernel, and calling it again would
    /// fail with `EALREADY`; so after `EINTR` this waits for writability with `poll` (for at most the
    /// socket's `timeout`, if any) and reports the outcome from `SO_ERROR`. Any thread.
    /// - Throws: `SocketError` from `connect`, for example `ECONNREFUSED`; `ETIMEDOUT` when `timeout` ran out
    ///   while waiting after `EINTR`.
    public func connect(to address: SocketAddress) throws {
        let fd = try openDescriptor("connect")
        let result = address.withSockAddr { Glibc.connect(fd, $0, $1) }
        if result == 0 { return }
        guard errno == EINTR else { throw SocketError.lastError("connect") }
        try finishInterruptedConnect(fd)
    }

    /// The rest of a `connect` that `EINTR` interrupted: wait until the socket is writable, then read the
    /// connection's outcome.
    private func finishInterruptedConnect(_ fd: Int32) throws {
        let milliseconds: Int32 =
            timeout.map { limit in
                let (seconds, attoseconds) = limit.components
                guard seconds < Int64(Int32.max / 1000) else { return Int32.max }
                // Rounded up, so a positive timeout never polls for 0 ms.
                let fraction = (max(attoseconds, 0) + 999_999_999_999_999) / 1_000_000_000_000_000
                let total = max(seconds, 0) * 1000 + fraction
                return Int32(clamping: max(total, 1))
            } ?? -1
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        while true {
            // An `EINTR` restarts the full wait, so the bound can stretch but never shrink.
            let ready = poll(&entry, 1, milliseconds)
            if ready > 0 { break }
            if ready == 0 { throw SocketError(operation: "connect", code: ETIMEDOUT) }
            if errno != EINTR { throw SocketError.lastError("poll") }
        }
        let code = try option(level: SOL_SOCKET, name: SO_ERROR)
        if code != 0 { throw SocketError(operation: "connect", code: code) }
    }

    /// Accepts one connection: a new close-on-exec socket and the peer's address. One `accept4(2)` call
    /// (more only after `EINTR`); any thread.
    ///
    /// - Parameter nonBlocking: false (the default) returns a blocking socket, for handlers that read and
    ///   write in a straight line; true sets `O_NONBLOCK` on it in the same call (`SOCK_NONBLOCK`), for an
    ///   event loop, and the result's `isNonBlocking` is true. The new socket never inherits the
    ///   listener's `O_NONBLOCK`.
    /// - Throws: `SocketError` from `accept4`; `EAGAIN` when this socket is non-blocking and no connection
    ///   is pending (for example after a spurious readiness, or another thread took the connection).
    public func accept(nonBlocking: Bool = false) throws -> (Socket, SocketAddress) {
        let fd = try openDescriptor("accept")
        var flags = Int32(SOCK_CLOEXEC.rawValue)
        if nonBlocking { flags |= Int32(SOCK_NONBLOCK.rawValue) }
        var accepted: Int32 = -1
        let peer = try SocketAddress.receive { address, length in
            while true {
                accepted = CSocketServerShims_accept4(fd, address, &length, flags)
                if accepted >= 0 { return }
                if errno == EINTR { continue }
                throw SocketError.lastError("accept")
            }
        }
        return (Socket(adopting: accepted, family: family, type: type, nonBlocking: nonBlocking), peer)
    }

    /// Receives up to `buffer.count` bytes; returns 0 at end of file.
    /// - Throws: `SocketError` (`ETIMEDOUT` when the socket's `timeout` expired, `EAGAIN` on a non-blocking
    ///   socket with nothing to read).
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if hasTransport.load(ordering: .acquiring), let transport {
            try applyDeadline("recv", descriptor: try openDescriptor("recv"), receiving: true)
            return try transport.receive(into: buffer)
        }
        let fd = try openDescriptor("recv")
        while true {
            try applyDeadline("recv", descriptor: fd, receiving: true)
            let count = recv(fd, buffer.baseAddress, buffer.count, 0)
            if count >= 0 { return count }
            try failIO("recv")
        }
    }

    /// Receives up to `maxLength` bytes as a new array; empty at end of file.
    public func receive(maxLength: Int) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: max(maxLength, 0)) { buffer, count in
            count = try receive(into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    /// Sends as much of `bytes` as the kernel takes in one call and returns how much that was.
    public func send(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        if hasTransport.load(ordering: .acquiring), let transport {
            try applyDeadline("send", descriptor: try openDescriptor("send"), receiving: false)
            return try transport.send(bytes)
        }
        let fd = try openDescriptor("send")
        while true {
            try applyDeadline("send", descriptor: fd, receiving: false)
            let count = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            if count >= 0 { return count }
            try failIO("send")
        }
    }

    /// Sends all of `bytes`, looping over partial sends and signals (Python's `sendall`).
    public func sendAll(_ bytes: UnsafeRawBufferPointer) throws {
        try sendAll(bytes, moreComing: false)
    }

    /// Sends all of `bytes`; with `moreComing`, flagged `MSG_MORE`, so that the kernel holds a last partial
    /// segment for what follows at once (a file after its response head) instead of sending it alone.
    /// A socket with a `transport` (TLS) sends through it, one `send(_:)` at a time, without the flag.
    package func sendAll(_ bytes: UnsafeRawBufferPointer, moreComing: Bool) throws {
        if hasTransport.load(ordering: .acquiring), transport != nil {
            try sendAllThroughTransport(bytes)
            return
        }
        let fd = try openDescriptor("send")
        let flags = Int32(MSG_NOSIGNAL) | (moreComing ? Int32(MSG_MORE) : 0)
        var offset = 0
        while offset < bytes.count {
            try applyDeadline("send", descriptor: fd, receiving: false)
            let count = Glibc.send(fd, bytes.baseAddress.map { $0 + offset }, bytes.count - offset, flags)
            if count >= 0 {
                offset += count
            } else {
                try failIO("send")
            }
        }
    }

    /// `sendAll` through the security layer (TLS), which frames the bytes itself; `send` applies the
    /// deadline. Never inlined, so that a plain socket's `sendAll` carries none of it.
    @inline(never)
    private func sendAllThroughTransport(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            offset += try send(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
        }
    }

    /// Sends all of `bytes`.
    public func sendAll(_ bytes: some Sequence<UInt8>) throws {
        let array = Array(bytes)
        try array.withUnsafeBytes { try sendAll($0) }
    }

    /// Receives one datagram of at most `maxLength` bytes (longer ones are cut) and its sender: one
    /// `recvfrom(2)` call (more only after `EINTR`) into a new array of `maxLength` bytes; any thread.
    ///
    /// - Parameters:
    ///   - maxLength: the most bytes kept of the datagram.
    ///   - nonBlocking: true passes `MSG_DONTWAIT`, so this one call never waits, whatever the socket's
    ///     `O_NONBLOCK`: a datagram server receives this way after readiness, while its socket stays
    ///     blocking for the replies that handlers send on other threads.
    /// - Throws: `SocketError`: `EAGAIN` when `nonBlocking` (or the socket is non-blocking) and nothing is
    ///   queued; `ETIMEDOUT` when a blocking receive ran past the socket's `timeout`.
    public func receiveFrom(maxLength: Int, nonBlocking: Bool = false) throws -> ([UInt8], SocketAddress) {
        let fd = try openDescriptor("recvfrom")
        let flags: Int32 = nonBlocking ? Int32(MSG_DONTWAIT) : 0
        var packet = [UInt8]()
        let sender = try SocketAddress.receive { address, length in
            packet = try [UInt8](unsafeUninitializedCapacity: max(maxLength, 0)) { buffer, count in
                while true {
                    let result = recvfrom(fd, buffer.baseAddress, buffer.count, flags, address, &length)
                    if result >= 0 {
                        count = result
                        return
                    }
                    if nonBlocking, errno == EAGAIN || errno == EWOULDBLOCK {
                        // Not the timeout's EAGAIN: this call was asked not to wait.
                        throw SocketError(operation: "recvfrom", code: EAGAIN)
                    }
                    try failIO("recvfrom")
                }
            }
        }
        return (packet, sender)
    }

    /// Sends one datagram to `address`: one `sendto(2)` call (more only after `EINTR`); any thread.
    ///
    /// On a blocking socket it waits while the send buffer is full, as datagram handlers replying on the
    /// server's socket expect: a datagram server keeps that socket blocking and receives with
    /// `receiveFrom(maxLength:nonBlocking: true)` instead, so replies from several threads never fail with
    /// `EAGAIN` under load.
    public func send(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress) throws {
        let fd = try openDescriptor("sendto")
        while true {
            let count = address.withSockAddr { sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), $0, $1) }
            if count >= 0 { return }
            try failIO("sendto")
        }
    }

    /// Sends one datagram holding `bytes` to `address`.
    public func send(_ bytes: [UInt8], to address: SocketAddress) throws {
        try bytes.withUnsafeBytes { try send($0, to: address) }
    }

    /// The address the socket is bound to (`getsockname`).
    public var localAddress: SocketAddress {
        get throws {
            let fd = try openDescriptor("getsockname")
            return try SocketAddress.receive { address, length in
                guard getsockname(fd, address, &length) == 0 else { throw SocketError.lastError("getsockname") }
            }
        }
    }

    /// The address of the connected peer (`getpeername`).
    public var peerAddress: SocketAddress {
        get throws {
            let fd = try openDescriptor("getpeername")
            return try SocketAddress.receive { address, length in
                guard getpeername(fd, address, &length) == 0 else { throw SocketError.lastError("getpeername") }
            }
        }
    }

    /// A limit on each blocking receive and send (Python's `settimeout`); nil blocks for ever.
    ///
    /// Applied as `SO_RCVTIMEO`/`SO_SNDTIMEO`; an expired call throws a `SocketError` with `isTimeout`.
    public var timeout: Duration? {
        get { timeoutStorage.withLock { $0 } }
        set {
            timeoutStorage.withLock { $0 = newValue }
            var (seconds, microseconds): (Int64, Int64) = (0, 0)
            if let newValue {
                let (whole, attoseconds) = newValue.components
                if whole >= 0 { (seconds, microseconds) = (whole, attoseconds / 1_000_000_000_000) }
                // A positive limit under a microsecond must not become 0, which the kernel reads as no limit.
                if seconds == 0, microseconds == 0 { microseconds = 1 }
            }
            let fd = fileDescriptor
            guard fd >= 0 else { return }
            _ = CSocketServerShims_set_socket_timeout(fd, SO_RCVTIMEO, seconds, microseconds)
            _ = CSocketServerShims_set_socket_timeout(fd, SO_SNDTIMEO, seconds, microseconds)
        }
    }

    /// The security layer over this connection (TLS), set by the server before the handler runs; nil for a
    /// plain socket. While set, `receive(into:)` and `send(_:)` (and so `rfile`, `wfile`, `sendAll`) read
    /// and write plaintext through it. Any thread.
    package var transport: (any SocketTransport)? {
        get { hasTransport.load(ordering: .acquiring) ? transportStorage.withLock { $0 } : nil }
        set {
            transportStorage.withLock { $0 = newValue }
            hasTransport.store(newValue != nil, ordering: .releasing)
        }
    }

    /// Whether a security layer (TLS, from `SocketServerTLS`) carries this connection. Bytes written to
    /// `fileDescriptor` directly (`sendfile`, `writev`, `splice`) would bypass it: a handler with such a
    /// fast path must take the ordinary `wfile` path when this is true. An atomic load; any thread.
    public var isSecured: Bool { hasTransport.load(ordering: .acquiring) }

    /// The credentials of the process at the other end of a connected Unix socket (`SO_PEERCRED`): its pid,
    /// uid and gid when it connected. One `getsockopt`; any thread.
    /// - Throws: `SocketError` (`ENOTCONN`, or `EBADF` once closed); on a TCP socket Linux returns no
    ///   process (pid 0) with the overflow uid and gid.
    public var peerCredentials: PeerCredentials {
        get throws {
            let fd = try openDescriptor("getsockopt")
            var pid: Int32 = 0
            var uid: UInt32 = 0
            var gid: UInt32 = 0
            guard CSocketServerShims_peer_credentials(fd, &pid, &uid, &gid) == 0 else {
                throw SocketError.lastError("getsockopt")
            }
            return PeerCredentials(pid: pid, uid: uid, gid: gid)
        }
    }

    /// A point in time after which every blocking `receive` and `send` of this stream socket fails with a
    /// `SocketError` whose `isTimeout` is true (operation `"recv past the request deadline"` or `"send past
    /// the request deadline"`), however the peer paces its bytes; nil, the default, sets no bound.
    ///
    /// What `ServerConfiguration.requestTimeout` sets when a `StreamRequestHandler` starts. Unlike
    /// `timeout`, which limits each call, it bounds them all together: a client that sends one byte just
    /// within every `timeout` is still cut off at the deadline. Each receive and send then costs one more
    /// `setsockopt` (the kernel's per-call timeout is set to what remains, or to `timeout` if that is
    /// shorter). A handler serving several requests on one connection may move it forward between them.
    /// Any thread; no effect on a non-blocking socket.
    public var deadline: ContinuousClock.Instant? {
        get { deadlineStorage.withLock { $0 } }
        set {
            deadlineStorage.withLock { $0 = newValue }
            hasDeadline.store(newValue != nil, ordering: .releasing)
            if newValue == nil, hasTimeoutBeenAdjusted {
                let kept = timeout
                timeout = kept  // puts back the per-call limits the deadline changed
            }
        }
    }

    /// Whether a deadline has changed the kernel's per-call timeouts (they need restoring when it goes).
    private var hasTimeoutBeenAdjusted: Bool { deadlineAdjusted.load(ordering: .relaxed) }
    private let deadlineAdjusted = Atomic(false)
    /// Whether the last call was limited by what remained of the deadline rather than by `timeout`, so that
    /// its expiry is reported as the deadline's even when the kernel woke a little early.
    private let limitedByDeadline = Atomic(false)

    /// Before a blocking receive or send: throws when the deadline has passed, else limits the call to what
    /// remains of it (or to `timeout` when that is shorter).
    ///
    /// Inlined into every receive and send, so that a socket without a deadline pays one atomic load and a
    /// branch; the rest (`limitDeadlineCall`) sets up a `ContinuousClock.Instant?`, whose layout the compiler
    /// only learns at run time (about 40 instructions before its first line). `operation` is a
    /// `StaticString`, so a call without a deadline builds no `String` for an error it does not throw.
    @inline(__always)
    private func applyDeadline(_ operation: StaticString, descriptor: Int32, receiving: Bool) throws {
        guard hasDeadline.load(ordering: .acquiring) else { return }
        try limitDeadlineCall(operation, descriptor: descriptor, receiving: receiving)
    }

    /// `applyDeadline` once a deadline is set. Never inlined: inlined into a send loop, its clock values
    /// would be set up on every call again.
    @inline(never)
    private func limitDeadlineCall(_ operation: StaticString, descriptor: Int32, receiving: Bool) throws {
        guard !isNonBlocking, let deadline else { return }
        let remaining = ContinuousClock.now.duration(to: deadline)
        guard remaining > .zero else { throw SocketError(operation: "\(operation) past the request deadline", code: ETIMEDOUT) }
        let perCall = timeout
        let limit = perCall.map { min($0, remaining) } ?? remaining
        limitedByDeadline.store(perCall.map { remaining <= $0 } ?? true, ordering: .relaxed)
        let (wholeSeconds, attoseconds) = limit.components
        let seconds = max(wholeSeconds, 0)
        var microseconds = attoseconds / 1_000_000_000_000
        if seconds == 0 && microseconds <= 0 { microseconds = 1 }  // 0 would mean no limit
        deadlineAdjusted.store(true, ordering: .relaxed)
        _ = CSocketServerShims_set_socket_timeout(
            descriptor, receiving ? SO_RCVTIMEO : SO_SNDTIMEO, seconds, microseconds)
    }

    /// Sets an integer socket option (`setsockopt`).
    public func setOption(level: Int32, name: Int32, value: Int32) throws {
        var value = value
        let fd = try openDescriptor("setsockopt")
        guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw SocketError.lastError("setsockopt")
        }
    }

    /// Reads an integer socket option (`getsockopt`).
    public func option(level: Int32, name: Int32) throws -> Int32 {
        var value: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        let fd = try openDescriptor("getsockopt")
        guard getsockopt(fd, level, name, &value, &size) == 0 else { throw SocketError.lastError("getsockopt") }
        return value
    }

    /// Switches `O_NONBLOCK` on or off: two `fcntl` calls; any thread, though not concurrently with I/O
    /// on the socket that depends on the mode.
    public func setNonBlocking(_ enabled: Bool) throws {
        let fd = try openDescriptor("fcntl")
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { throw SocketError.lastError("fcntl") }
        let updated = enabled ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        guard fcntl(fd, F_SETFL, updated) == 0 else { throw SocketError.lastError("fcntl") }
        nonBlockingFlag.store(enabled, ordering: .releasing)
    }

    /// Whether `O_NONBLOCK` is set, as this object knows it: from `init(family:type:nonBlocking:)`,
    /// `accept(nonBlocking:)`, `init(adopting:...:nonBlocking:)` and `setNonBlocking`. An atomic load, no
    /// system call; any thread. A flag changed behind the object's back (`fcntl` on `fileDescriptor`) is
    /// not seen.
    public var isNonBlocking: Bool { nonBlockingFlag.load(ordering: .acquiring) }

    private func openDescriptor(_ operation: String) throws -> Int32 {
        let fd = fileDescriptor
        guard fd >= 0 else { throw SocketError(operation: operation, code: EBADF) }
        return fd
    }

    /// Sends all of `region` with `sendfile(2)`, blocking: the deadline and the per-call `timeout` apply to
    /// each call as they do to `send` (a non-blocking socket waits for writability with `poll`).
    /// - Throws: `SocketError` as `send` does; `FileRegionError.fileShrank` when the file ends early.
    package func sendAll(_ region: inout FileRegion) throws {
        let fd = try openDescriptor("sendfile")
        while !region.isEmpty {
            try applyDeadline("sendfile", descriptor: fd, receiving: false)
            guard try region.sendOnce(to: fd, timeoutIsSet: false) == nil else { continue }
            if isNonBlocking {
                var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&entry, 1, -1)
            } else {
                // A blocking sendfile fails with EAGAIN only when its send timeout expired.
                try failIO("sendfile", code: EAGAIN)
            }
        }
    }

    /// Turns the `errno` of a failed receive or send into a thrown error, or returns to retry after `EINTR`.
    private func failIO(_ operation: String) throws {
        try failIO(operation, code: errno)
    }

    /// Turns the error `code` of a failed receive or send into a thrown error, or returns after `EINTR`.
    /// Never inlined: it reads the deadline, whose clock values a caller would otherwise set up on every
    /// receive or send, failed or not.
    @inline(never)
    private func failIO(_ operation: String, code: Int32) throws {
        if code == EINTR { return }
        if code == EAGAIN || code == EWOULDBLOCK {
            if hasDeadline.load(ordering: .acquiring), !isNonBlocking, let deadline,
                limitedByDeadline.load(ordering: .relaxed) || ContinuousClock.now >= deadline
            {
                throw SocketError(operation: "\(operation) past the request deadline", code: ETIMEDOUT)
            }
            if timeout != nil || (hasDeadline.load(ordering: .acquiring) && !isNonBlocking) {
                throw SocketError(operation: operation, code: ETIMEDOUT)
            }
        }
        throw SocketError(operation: operation, code: code)
    }
}
