import Glibc

/// Memory per idle connection: opens `connections` connections, makes each do one echo (so the server has
/// really taken it on, thread or child included), waits for the server to settle, and samples its RSS.
struct IdleConnectionsLoad {
    let endpoint: IPv4Endpoint
    let connections: Int
    let settleSeconds: Double

    func run(_ window: inout MeasuredWindow) -> LoadResult {
        let poller = Epoll(capacity: 1024)
        var sockets: [Int32] = []
        var answered = [Bool](repeating: false, count: connections)
        var failures: UInt64 = 0
        defer { for fd in sockets where fd >= 0 { close(fd) } }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let started = monotonicNanoseconds()
        window.begin(now: started)
        for index in 0..<connections {
            let fd = LoopbackSocket.connectedTCP(to: endpoint)
            sockets.append(fd)
            guard fd >= 0 else {
                failures += 1
                continue
            }
            poller.add(fd, token: UInt64(index), events: Epoll.readable)
            if send(fd, requestLine, requestLine.count, Int32(MSG_NOSIGNAL)) != requestLine.count { failures += 1 }
            // Drain answers as we go so that 10,000 connections do not wait on one another.
            if index % 64 == 63 { drain(poller, &sockets, &answered, &buffer, timeoutMilliseconds: 0) }
        }
        let deadline = monotonicNanoseconds() + 3_000_000_000
        while answered.filter({ $0 }).count + Int(failures) < connections && monotonicNanoseconds() < deadline {
            drain(poller, &sockets, &answered, &buffer, timeoutMilliseconds: 20)
        }
        let served = answered.filter { $0 }.count
        sleepSeconds(settleSeconds)
        var result = window.finish(now: monotonicNanoseconds())
        result.requests = UInt64(served)
        result.errors = UInt64(connections - served)
        result.stalled = UInt64(connections - served)
        return result
    }

    private func drain(
        _ poller: Epoll, _ sockets: inout [Int32], _ answered: inout [Bool], _ buffer: inout [UInt8],
        timeoutMilliseconds: Int32
    ) {
        poller.wait(timeoutMilliseconds: timeoutMilliseconds) { token, _ in
            let index = Int(token)
            let count = buffer.withUnsafeMutableBytes { recv(sockets[index], $0.baseAddress, $0.count, 0) }
            if count > 0 { answered[index] = true }
            if count == 0 {
                poller.remove(sockets[index])
                close(sockets[index])
                sockets[index] = -1
            }
        }
    }
}
