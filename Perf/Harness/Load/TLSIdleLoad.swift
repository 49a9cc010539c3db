import CPerfTLS
import Glibc

/// Memory per idle TLS connection: opens `connections` connections, each completing a full handshake and one
/// keep-alive GET of `path`, keeps them all open, waits for the server to settle and samples its RSS (the TLS
/// counterpart of `IdleConnectionsLoad`; the server holds a session per connection, its buffers released).
struct TLSIdleLoad {
    let endpoint: IPv4Endpoint
    let connections: Int
    let path: String
    let settleSeconds: Double
    let client: OpaquePointer

    func run(_ window: inout MeasuredWindow) -> LoadResult {
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: perf\r\n\r\n".utf8)
        let poller = Epoll(capacity: 1024)
        var sockets: [Int32] = []
        var sessions: [OpaquePointer?] = []
        var answered = [Bool](repeating: false, count: connections)
        var failed = [Bool](repeating: false, count: connections)
        defer {
            for session in sessions { perf_tls_connection_free(session) }
            for fd in sockets where fd >= 0 { close(fd) }
        }
        func step(_ index: Int) {
            guard !answered[index], !failed[index], let session = sessions[index] else { return }
            var body: UInt64 = 0
            var state = perf_tls_step(session, &body)
            while state == Int32(PERF_TLS_AGAIN) { state = perf_tls_step(session, &body) }
            switch state {
            case Int32(PERF_TLS_WANT_READ): poller.modify(sockets[index], token: UInt64(index), events: Epoll.readable)
            case Int32(PERF_TLS_WANT_WRITE): poller.modify(sockets[index], token: UInt64(index), events: Epoll.writable)
            case Int32(PERF_TLS_COMPLETE):
                answered[index] = true
                poller.remove(sockets[index])
            default:
                failed[index] = true
                poller.remove(sockets[index])
            }
        }
        window.begin(now: monotonicNanoseconds())
        for index in 0..<connections {
            let fd = LoopbackSocket.connectedTCP(to: endpoint)
            sockets.append(fd)
            let session = fd < 0 ? nil : request.withUnsafeBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) { perf_tls_connection_new(client, fd, $0.baseAddress, $0.count) }
            }
            sessions.append(session)
            guard session != nil else {
                failed[index] = true
                continue
            }
            poller.add(fd, token: UInt64(index), events: Epoll.writable)
            step(index)
            // Let earlier handshakes finish as we go, so that 1,000 connections do not wait on one another.
            if index % 16 == 15 { poller.wait(timeoutMilliseconds: 0) { token, _ in step(Int(token)) } }
        }
        let deadline = monotonicNanoseconds() + 10_000_000_000
        func settled() -> Bool { zip(answered, failed).allSatisfy { $0 || $1 } }
        while !settled() && monotonicNanoseconds() < deadline {
            poller.wait(timeoutMilliseconds: 20) { token, _ in step(Int(token)) }
        }
        let served = answered.filter { $0 }.count
        sleepSeconds(settleSeconds)
        var result = window.finish(now: monotonicNanoseconds())
        result.requests = UInt64(served)
        result.errors = UInt64(connections - served)
        result.stalled = UInt64(connections - served)
        return result
    }
}
