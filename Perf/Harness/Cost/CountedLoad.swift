import Glibc

/// The client of a cost run: exactly `requests` requests, one at a time, blocking, from the harness itself (the
/// figures are counts, so pinning does not matter). Every wait is bounded (a server under valgrind answers
/// tens of times slower than natively); returns how many requests were answered correctly.
struct CountedLoad {
    let endpoint: IPv4Endpoint
    let kind: LoadCommand.Kind
    let requests: Int
    /// Per-call bound on a wait: generous, as valgrind translates code on first use.
    let timeoutSeconds = 30

    func run() -> Int {
        switch kind {
        case .udp: return datagrams()
        case .connectPerRequest: return (0..<requests).reduce(0) { done, _ in done + (oneConnection() ? 1 : 0) }
        default: return pingPong()
        }
    }

    private func bounded(_ fd: Int32) {
        var timeout = timeval()
        timeout.tv_sec = timeoutSeconds
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Reads exactly `count` bytes (or until the peer closes or a wait times out); the bytes read.
    private func readFully(_ fd: Int32, _ count: Int, into buffer: inout [UInt8]) -> Int {
        var total = 0
        while total < count {
            let received = buffer.withUnsafeMutableBytes { raw in
                raw.baseAddress.map { recv(fd, $0 + total, count - total, 0) } ?? -1
            }
            if received < 0 && errno == EINTR { continue }
            if received <= 0 { break }
            total += received
        }
        return total
    }

    private func pingPong() -> Int {
        let fd = LoopbackSocket.tcp(nonBlocking: false)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        bounded(fd)
        guard endpoint.withSocketAddress({ connect(fd, $0, $1) }) == 0 else { return 0 }
        var buffer = [UInt8](repeating: 0, count: requestLine.count)
        var done = 0
        for _ in 0..<requests {
            guard send(fd, requestLine, requestLine.count, Int32(MSG_NOSIGNAL)) == requestLine.count,
                readFully(fd, requestLine.count, into: &buffer) == requestLine.count
            else { break }
            done += 1
        }
        return done
    }

    private func oneConnection() -> Bool {
        let fd = LoopbackSocket.tcp(nonBlocking: false)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        bounded(fd)
        guard endpoint.withSocketAddress({ connect(fd, $0, $1) }) == 0,
            send(fd, requestLine, requestLine.count, Int32(MSG_NOSIGNAL)) == requestLine.count
        else { return false }
        shutdown(fd, Int32(SHUT_WR))
        var buffer = [UInt8](repeating: 0, count: requestLine.count + 1)
        // The echo, then the server's close (a read of 0 bytes).
        return readFully(fd, requestLine.count + 1, into: &buffer) == requestLine.count
    }

    private func datagrams() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var timeout = timeval()
        timeout.tv_sec = 2  // a datagram lost (or a slow start) is sent again, at most 5 times
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard endpoint.withSocketAddress({ connect(fd, $0, $1) }) == 0 else { return 0 }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var done = 0
        for _ in 0..<requests {
            var answered = false
            for _ in 0..<5 where !answered {
                _ = send(fd, requestLine, requestLine.count, 0)
                let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                answered = received == requestLine.count
            }
            guard answered else { break }
            done += 1
        }
        return done
    }
}
