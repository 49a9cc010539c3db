import Glibc

extension Socket {
    /// Takes ownership of a socket descriptor this process inherited (from systemd, a launcher, or the process
    /// that re-executed it), asking the kernel what it is instead of trusting the caller.
    ///
    /// Sets `FD_CLOEXEC` on it, so that it goes no further than this process unless handed on on purpose;
    /// reads its family (`getsockname`), type (`SO_TYPE`) and `O_NONBLOCK`. Five system calls; any thread.
    /// The descriptor is closed by the new socket from then on (not when this throws).
    /// - Parameter fd: an open descriptor.
    /// - Throws: `SocketError` (`EBADF`) when `fd` is not open; `SocketServerError.invalidListener` when it is
    ///   not an IPv4, IPv6 or Unix socket of stream or datagram type.
    public convenience init(inheriting fd: Int32) throws {
        let descriptorFlags = fcntl(fd, F_GETFD)
        guard descriptorFlags >= 0 else { throw SocketError.lastError("fcntl") }
        guard fcntl(fd, F_SETFD, descriptorFlags | FD_CLOEXEC) == 0 else { throw SocketError.lastError("fcntl") }
        let statusFlags = fcntl(fd, F_GETFL)
        guard statusFlags >= 0 else { throw SocketError.lastError("fcntl") }
        var rawType: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &rawType, &size) == 0 else {
            if errno == ENOTSOCK { throw SocketServerError.invalidListener("descriptor \(fd) is not a socket") }
            throw SocketError.lastError("getsockopt")
        }
        let type: SocketType
        switch rawType {
        case SocketType.stream.rawValue: type = .stream
        case SocketType.datagram.rawValue: type = .datagram
        default: throw SocketServerError.invalidListener("descriptor \(fd) is neither a stream nor a datagram socket")
        }
        let family = try Self.kernelFamily(of: fd)
        guard family != .unspecified else {
            throw SocketServerError.invalidListener("descriptor \(fd) is not an IPv4, IPv6 or Unix socket")
        }
        self.init(adopting: fd, family: family, type: type, nonBlocking: statusFlags & O_NONBLOCK != 0)
    }

    /// The family the kernel reports for `fd` (`getsockname`), whatever a `Socket` object claims.
    static func kernelFamily(of fd: Int32) throws -> AddressFamily {
        let address = try SocketAddress.receive { address, length in
            guard getsockname(fd, address, &length) == 0 else { throw SocketError.lastError("getsockname") }
        }
        return address.family
    }
}
