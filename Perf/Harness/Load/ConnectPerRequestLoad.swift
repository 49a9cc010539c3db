import Glibc

/// A new connection per request, `clients` at a time: connect, send a line, half-close, read the echo and
/// the server's close, close. The server closes first, so TIME_WAIT stays on the server's side and the
/// client's ephemeral ports are not exhausted.
struct ConnectPerRequestLoad {
    let endpoint: IPv4Endpoint
    let clients: Int
    /// A connection with no progress for this long counts as an error and is replaced.
    let stuckNanoseconds: UInt64 = 2_000_000_000

    private enum Phase { case connecting, reading }

    func run(_ window: inout MeasuredWindow) -> LoadResult {
        let poller = Epoll(capacity: 256)
        var sockets = [Int32](repeating: -1, count: clients)
        var phases = [Phase](repeating: .connecting, count: clients)
        var startedAt = [UInt64](repeating: 0, count: clients)
        var received = [Int](repeating: 0, count: clients)
        var buffer = [UInt8](repeating: 0, count: 4096)
        defer { for fd in sockets where fd >= 0 { close(fd) } }

        func start(_ slot: Int) {
            let fd = LoopbackSocket.tcp(nonBlocking: true)
            sockets[slot] = fd
            startedAt[slot] = monotonicNanoseconds()
            received[slot] = 0
            phases[slot] = .connecting
            guard fd >= 0 else { return }
            let status = endpoint.withSocketAddress { connect(fd, $0, $1) }
            if status != 0 && errno != EINPROGRESS {
                window.fail()
            }
            poller.add(fd, token: UInt64(slot), events: Epoll.writable)
        }

        func retire(_ slot: Int) {
            let fd = sockets[slot]
            if fd >= 0 {
                poller.remove(fd)
                close(fd)
            }
            sockets[slot] = -1
        }

        for slot in 0..<clients { start(slot) }
        var lastSweep = monotonicNanoseconds()
        while window.advance(now: monotonicNanoseconds()) {
            poller.wait(timeoutMilliseconds: 5) { token, _ in
                let slot = Int(token)
                let fd = sockets[slot]
                switch phases[slot] {
                case .connecting:
                    guard LoopbackSocket.pendingError(fd) == 0,
                        send(fd, requestLine, requestLine.count, Int32(MSG_NOSIGNAL)) == requestLine.count
                    else {
                        window.fail()
                        retire(slot)
                        start(slot)
                        return
                    }
                    shutdown(fd, Int32(SHUT_WR))
                    phases[slot] = .reading
                    poller.modify(fd, token: token, events: Epoll.readable)
                case .reading:
                    let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if count < 0 && (errno == EAGAIN || errno == EINTR) { return }
                    if count > 0 {
                        received[slot] += count
                        return
                    }
                    if count == 0 && received[slot] == requestLine.count {
                        window.complete(started: startedAt[slot], now: monotonicNanoseconds())
                    } else {
                        window.fail()
                    }
                    retire(slot)
                    start(slot)
                }
            }
            let now = monotonicNanoseconds()
            if now - lastSweep > 100_000_000 {
                lastSweep = now
                for slot in 0..<clients where now - startedAt[slot] > stuckNanoseconds {
                    window.fail()
                    retire(slot)
                    start(slot)
                }
            }
        }
        return window.finish(now: monotonicNanoseconds())
    }
}
