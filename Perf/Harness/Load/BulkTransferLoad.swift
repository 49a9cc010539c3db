import Glibc

/// Bulk transfer: streams `totalBytes` of 1 KiB lines through one connection while reading the echo back
/// at the same time; the window is the time until the last byte has come back.
struct BulkTransferLoad {
    let endpoint: IPv4Endpoint
    let totalBytes: Int
    let timeoutNanoseconds: UInt64 = 30_000_000_000

    func run(_ window: inout MeasuredWindow) -> LoadResult {
        let fd = LoopbackSocket.connectedTCP(to: endpoint)
        guard fd >= 0 else {
            var result = window.finish(now: monotonicNanoseconds())
            result.errors += 1
            return result
        }
        defer { close(fd) }
        var chunk = [UInt8](repeating: UInt8(ascii: "b"), count: 65536)
        for end in stride(from: 1023, to: chunk.count, by: 1024) { chunk[end] = UInt8(ascii: "\n") }
        var inbound = [UInt8](repeating: 0, count: 262_144)
        let poller = Epoll(capacity: 4)
        poller.add(fd, token: 0, events: Epoll.readable | Epoll.writable)
        var sent = 0
        var received = 0
        let started = monotonicNanoseconds()
        window.begin(now: started)
        var lastProgress = started
        while received < totalBytes {
            poller.wait(timeoutMilliseconds: 50) { _, events in
                if events & Epoll.writable != 0 && sent < totalBytes {
                    let offset = sent % chunk.count
                    let length = min(chunk.count - offset, totalBytes - sent)
                    let count = chunk.withUnsafeBytes { send(fd, $0.baseAddress! + offset, length, Int32(MSG_NOSIGNAL)) }
                    if count > 0 { sent += count }
                    if sent == totalBytes { poller.modify(fd, token: 0, events: Epoll.readable) }
                }
                if events & Epoll.readable != 0 {
                    let count = inbound.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if count > 0 {
                        received += count
                        lastProgress = monotonicNanoseconds()
                    } else if count == 0 {
                        received = Int.max  // the server closed early: stop, counted below
                    }
                }
            }
            if monotonicNanoseconds() - lastProgress > timeoutNanoseconds { break }
        }
        let finished = monotonicNanoseconds()
        let complete = received == totalBytes
        if complete { window.complete(started: started, now: finished) } else { window.fail() }
        var result = window.finish(now: finished)
        result.bytes = complete ? UInt64(totalBytes) : 0
        result.requests = complete ? UInt64(totalBytes / 1024) : 0
        return result
    }
}
