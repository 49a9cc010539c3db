import Glibc
import Synchronization

/// An owned socket descriptor: the `request` of a stream server, the listening socket of every server.
///
/// Python's `socket.socket`, reduced to what servers and handlers use. Every call retries `EINTR`; sends
/// use `MSG_NOSIGNAL`, so a vanished peer is a `SocketError` (`EPIPE`/`ECONNRESET`), never a SIGPIPE.
/// The descriptor is closed by `close()` or, as a backstop, when the last reference goes away. `close()` is
/// safe to call twice and from any thread.
public final class Socket: @unchecked Sendable {
    private let descriptor: Atomic<Int32>
    private let timeoutStorage = SanitizedMutex<Duration?>(nil)

    /// The address family the socket was created with.
    public let family: AddressFamily
    /// Stream or datagram.
    public let type: SocketType

    /// Creates a new socket (close-on-exec).
    /// - Throws: `SocketError` from `socket(2)`, for example `EMFILE`.
    public init(family: AddressFamily, type: SocketType) throws {
        let fd = Glibc.socket(family.rawValue, type.rawValue | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.lastError("socket") }
        self.descriptor = Atomic(fd)
        self.family = family
        self.type = type
    }

    /// Takes ownership of an open descriptor (for example one returned by `accept`).
    public init(adopting fd: Int32, family: AddressFamily, type: SocketType) {
        self.descriptor = Atomic(fd)
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

    /// Connects to `address` (used by clients and tests).
    public func connect(to address: SocketAddress) throws {
        let fd = try openDescriptor("connect")
        while true {
            let result = address.withSockAddr { Glibc.connect(fd, $0, $1) }
            if result == 0 { return }
            if errno == EINTR { continue }
            throw SocketError.lastError("connect")
        }
    }

    /// Accepts one connection: a new blocking, close-on-exec socket and the peer's address.
    public func accept() throws -> (Socket, SocketAddress) {
        let fd = try openDescriptor("accept")
        var accepted: Int32 = -1
        let peer = try SocketAddress.receive { address, length in
            while true {
                accepted = accept4(fd, address, &length, Int32(SOCK_CLOEXEC.rawValue))
                if accepted >= 0 { return }
                if errno == EINTR { continue }
                throw SocketError.lastError("accept")
            }
        }
        return (Socket(adopting: accepted, family: family, type: type), peer)
    }

    /// Receives up to `buffer.count` bytes; returns 0 at end of file.
    /// - Throws: `SocketError` (`ETIMEDOUT` when the socket's `timeout` expired, `EAGAIN` on a non-blocking
    ///   socket with nothing to read).
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let fd = try openDescriptor("recv")
        while true {
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
        let fd = try openDescriptor("send")
        while true {
            let count = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            if count >= 0 { return count }
            try failIO("send")
        }
    }

    /// Sends all of `bytes`, looping over partial sends and signals (Python's `sendall`).
    public func sendAll(_ bytes: UnsafeRawBufferPointer) throws {
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

    /// Receives one datagram of at most `maxLength` bytes (longer ones are cut) and its sender.
    public func receiveFrom(maxLength: Int) throws -> ([UInt8], SocketAddress) {
        let fd = try openDescriptor("recvfrom")
        var packet = [UInt8]()
        let sender = try SocketAddress.receive { address, length in
            packet = try [UInt8](unsafeUninitializedCapacity: max(maxLength, 0)) { buffer, count in
                while true {
                    let result = recvfrom(fd, buffer.baseAddress, buffer.count, 0, address, &length)
                    if result >= 0 {
                        count = result
                        return
                    }
                    try failIO("recvfrom")
                }
            }
        }
        return (packet, sender)
    }

    /// Sends one datagram to `address`.
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
            var interval = newValue.map { timeval($0) } ?? timeval(tv_sec: 0, tv_usec: 0)
            if newValue != nil, interval.tv_sec == 0, interval.tv_usec == 0 { interval.tv_usec = 1 }
            let fd = fileDescriptor
            guard fd >= 0 else { return }
            let size = socklen_t(MemoryLayout<timeval>.size)
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &interval, size)
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &interval, size)
        }
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

    /// Switches `O_NONBLOCK` on or off.
    public func setNonBlocking(_ enabled: Bool) throws {
        let fd = try openDescriptor("fcntl")
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { throw SocketError.lastError("fcntl") }
        let updated = enabled ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        guard fcntl(fd, F_SETFL, updated) == 0 else { throw SocketError.lastError("fcntl") }
    }

    private func openDescriptor(_ operation: String) throws -> Int32 {
        let fd = fileDescriptor
        guard fd >= 0 else { throw SocketError(operation: operation, code: EBADF) }
        return fd
    }

    /// Turns the `errno` of a failed receive or send into a thrown error, or returns to retry after `EINTR`.
    private func failIO(_ operation: String) throws {
        let code = errno
        if code == EINTR { return }
        if (code == EAGAIN || code == EWOULDBLOCK), timeout != nil {
            throw SocketError(operation: operation, code: ETIMEDOUT)
        }
        throw SocketError(operation: operation, code: code)
    }
}

/// `accept4(2)`, which Glibc's Swift module hides behind `_GNU_SOURCE`; it takes `SOCK_CLOEXEC` in the same
/// call, so no forked child can inherit an accepted connection between `accept` and `fcntl`.
@_silgen_name("accept4")
private func accept4(
    _ fd: Int32,
    _ address: UnsafeMutablePointer<sockaddr>?,
    _ length: UnsafeMutablePointer<socklen_t>?,
    _ flags: Int32
) -> Int32
