import Glibc

/// UDP echo: `clients` connected sockets, each with one 64-byte datagram in flight. A datagram not
/// answered within the timeout counts as lost (an error) and the client sends the next one.
struct DatagramEchoLoad {
    let endpoint: IPv4Endpoint
    let clients: Int
    let lossTimeoutNanoseconds: UInt64 = 200_000_000

    func run(_ window: inout MeasuredWindow) -> LoadResult {
        let poller = Epoll(capacity: 256)
        var sockets: [Int32] = []
        var sentAt: [UInt64] = []
        var completed: [UInt64] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        for index in 0..<clients {
            let fd = LoopbackSocket.connectedUDP(to: endpoint)
            sockets.append(fd)
            completed.append(0)
            sentAt.append(monotonicNanoseconds())
            guard fd >= 0 else { continue }
            poller.add(fd, token: UInt64(index), events: Epoll.readable)
            _ = send(fd, requestLine, requestLine.count, 0)
        }
        defer { for fd in sockets where fd >= 0 { close(fd) } }
        var lastSweep = monotonicNanoseconds()
        var wasMeasuring = false
        while window.advance(now: monotonicNanoseconds()) {
            if window.isMeasuring && !wasMeasuring {
                wasMeasuring = true
                for index in completed.indices { completed[index] = 0 }
            }
            poller.wait(timeoutMilliseconds: 5) { token, _ in
                let index = Int(token)
                let fd = sockets[index]
                while true {
                    let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if count < 0 { return }
                    let now = monotonicNanoseconds()
                    if count == requestLine.count {
                        window.complete(started: sentAt[index], now: now)
                        completed[index] += 1
                    } else {
                        window.fail()
                    }
                    sentAt[index] = now
                    _ = send(fd, requestLine, requestLine.count, 0)
                }
            }
            let now = monotonicNanoseconds()
            if now - lastSweep > 50_000_000 {
                lastSweep = now
                for index in sockets.indices where sockets[index] >= 0 && now - sentAt[index] > lossTimeoutNanoseconds {
                    window.fail()
                    sentAt[index] = now
                    _ = send(sockets[index], requestLine, requestLine.count, 0)
                }
            }
        }
        var result = window.finish(now: monotonicNanoseconds())
        result.stalled = UInt64(completed.filter { $0 == 0 }.count)
        return result
    }
}
