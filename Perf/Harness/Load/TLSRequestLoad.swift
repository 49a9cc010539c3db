import CPerfTLS
import Glibc

/// HTTPS over new connections, `clients` at a time: connect, full TLS handshake (no session reuse), one GET with
/// `Connection: close`, read the head and Content-Length body bytes, send close_notify, close. With a small file
/// this is new TLS connections per second (`tls-connect`); with one client and a large file it is bulk
/// throughput over one TLS connection per transfer (`tls-bulk`, the handshake a negligible share). Body bytes
/// are counted as they arrive, so a transfer that straddles the window's edge counts its share.
struct TLSRequestLoad {
    let endpoint: IPv4Endpoint
    let clients: Int
    let path: String
    let client: OpaquePointer
    /// A connection with no progress for this long counts as an error and is replaced.
    let stuckNanoseconds: UInt64 = 10_000_000_000

    func run(_ window: inout MeasuredWindow) -> LoadResult {
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: perf\r\nConnection: close\r\n\r\n".utf8)
        let poller = Epoll(capacity: 256)
        var sockets = [Int32](repeating: -1, count: clients)
        var sessions = [OpaquePointer?](repeating: nil, count: clients)
        var startedAt = [UInt64](repeating: 0, count: clients)
        var progressAt = [UInt64](repeating: 0, count: clients)
        var again: [Int] = []
        defer {
            for slot in 0..<clients {
                perf_tls_connection_free(sessions[slot])
                if sockets[slot] >= 0 { close(sockets[slot]) }
            }
        }

        func retire(_ slot: Int) {
            perf_tls_connection_free(sessions[slot])
            sessions[slot] = nil
            if sockets[slot] >= 0 {
                poller.remove(sockets[slot])
                close(sockets[slot])
            }
            sockets[slot] = -1
        }
        func start(_ slot: Int) {
            let fd = LoopbackSocket.tcp(nonBlocking: true)
            sockets[slot] = fd
            startedAt[slot] = monotonicNanoseconds()
            progressAt[slot] = startedAt[slot]
            guard fd >= 0 else { return window.fail() }
            let status = endpoint.withSocketAddress { connect(fd, $0, $1) }
            if status != 0 && errno != EINPROGRESS { window.fail() }
            // Writable once connected; the session is made then.
            poller.add(fd, token: UInt64(slot), events: Epoll.writable)
        }
        func step(_ slot: Int) {
            let fd = sockets[slot]
            guard fd >= 0 else { return }
            if sessions[slot] == nil {
                guard LoopbackSocket.pendingError(fd) == 0,
                    let session = request.withUnsafeBufferPointer({ bytes in
                        bytes.withMemoryRebound(to: CChar.self) {
                            perf_tls_connection_new(client, fd, $0.baseAddress, $0.count)
                        }
                    })
                else {
                    window.fail()
                    retire(slot)
                    return start(slot)
                }
                sessions[slot] = session
            }
            var body: UInt64 = 0
            let state = perf_tls_step(sessions[slot], &body)
            let now = monotonicNanoseconds()
            progressAt[slot] = now
            if window.isMeasuring { window.result.bytes += body }
            switch state {
            case Int32(PERF_TLS_WANT_READ): poller.modify(fd, token: UInt64(slot), events: Epoll.readable)
            case Int32(PERF_TLS_WANT_WRITE): poller.modify(fd, token: UInt64(slot), events: Epoll.writable)
            case Int32(PERF_TLS_AGAIN): again.append(slot)
            case Int32(PERF_TLS_COMPLETE):
                window.complete(started: startedAt[slot], now: now)
                retire(slot)
                start(slot)
            default:
                window.fail()
                retire(slot)
                start(slot)
            }
        }

        for slot in 0..<clients { start(slot) }
        window.startClock()
        var lastSweep = monotonicNanoseconds()
        while window.advance(now: monotonicNanoseconds()) {
            let pending = again
            again.removeAll(keepingCapacity: true)
            for slot in pending { step(slot) }
            poller.wait(timeoutMilliseconds: again.isEmpty ? 5 : 0) { token, _ in step(Int(token)) }
            let now = monotonicNanoseconds()
            if now - lastSweep > 100_000_000 {
                lastSweep = now
                for slot in 0..<clients where now - progressAt[slot] > stuckNanoseconds {
                    window.fail()
                    retire(slot)
                    start(slot)
                }
            }
        }
        return window.finish(now: monotonicNanoseconds())
    }
}
