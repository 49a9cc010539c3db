import Glibc

/// Echo ping-pong over persistent connections: each connection keeps one 64-byte line in flight and sends
/// the next as soon as the whole echo is back. Also used for the slow-handler workload.
struct PingPongLoad {
    let endpoint: IPv4Endpoint
    let connections: Int

    func run(_ window: inout MeasuredWindow) -> LoadResult {
        let poller = Epoll(capacity: 1024)
        var sockets: [Int32] = []
        var sentAt: [UInt64] = []
        var pendingBytes: [Int] = []
        var completed: [UInt64] = []
        var failures: UInt64 = 0
        for index in 0..<connections {
            let fd = LoopbackSocket.connectedTCP(to: endpoint)
            sockets.append(fd)
            sentAt.append(0)
            pendingBytes.append(0)
            completed.append(0)
            if fd < 0 { failures += 1 } else { poller.add(fd, token: UInt64(index), events: Epoll.readable) }
        }
        defer { for fd in sockets where fd >= 0 { close(fd) } }
        window.startClock()
        let firstSend = monotonicNanoseconds()
        for index in sockets.indices where sockets[index] >= 0 {
            if send(sockets[index], requestLine, requestLine.count, Int32(MSG_NOSIGNAL)) == requestLine.count {
                sentAt[index] = firstSend
                pendingBytes[index] = requestLine.count
            }
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var wasMeasuring = false
        var answeredOnce = 0
        var lastFirstAnswer = monotonicNanoseconds()
        let live = sockets.filter { $0 >= 0 }.count
        func settled(_ now: UInt64) -> Bool {
            answeredOnce >= live || now - lastFirstAnswer > 500_000_000
        }
        var now = monotonicNanoseconds()
        while window.advance(now: now, settled: settled(now)) {
            if window.isMeasuring && !wasMeasuring {
                wasMeasuring = true
                for index in completed.indices { completed[index] = 0 }
            }
            poller.wait(timeoutMilliseconds: 5) { token, _ in
                let index = Int(token)
                let fd = sockets[index]
                let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if received < 0 && (errno == EAGAIN || errno == EINTR) { return }
                guard received > 0 else {
                    window.fail()
                    poller.remove(fd)
                    close(fd)
                    sockets[index] = -1
                    return
                }
                pendingBytes[index] -= received
                guard pendingBytes[index] <= 0 else { return }
                let finished = monotonicNanoseconds()
                if !window.isMeasuring && completed[index] == 0 {
                    answeredOnce += 1
                    lastFirstAnswer = finished
                }
                window.complete(started: sentAt[index], now: finished)
                completed[index] += 1
                sentAt[index] = finished
                pendingBytes[index] = requestLine.count
                if send(fd, requestLine, requestLine.count, Int32(MSG_NOSIGNAL)) != requestLine.count { window.fail() }
            }
            now = monotonicNanoseconds()
        }
        var result = window.finish(now: monotonicNanoseconds())
        result.errors += failures
        result.stalled = UInt64(completed.filter { $0 == 0 }.count)
        return result
    }
}
