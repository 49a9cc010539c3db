import Foundation
import Glibc

/// HTTP/1.1 keep-alive GETs of one file over `connections` connections, one request in flight on each (as
/// `wrk -c N` does): reads the response head, then exactly Content-Length body bytes, then sends the next GET.
/// A server that closes after a response (`Connection: close`, as the demo's sync mode does) gets a new
/// connection in the same slot. A slot that completed no request in the measured window counts as stalled:
/// that is how starvation under keep-alive shows (issue 14).
struct HTTPKeepAliveLoad {
    let endpoint: IPv4Endpoint
    let connections: Int
    let path: String
    /// A slot with no progress for this long counts an error and reconnects.
    let stuckNanoseconds: UInt64 = 5_000_000_000

    /// One connection's progress through its current response.
    private struct Slot {
        var fd: Int32 = -1
        var sentAt: UInt64 = 0
        var lastProgress: UInt64 = 0
        var head: [UInt8] = []
        /// Body bytes still to come; nil while the head is incomplete.
        var remaining: Int?
        var closesAfter = false
        var completed: UInt64 = 0
    }

    func run(_ window: inout MeasuredWindow) -> LoadResult {
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: perf\r\n\r\n".utf8)
        let poller = Epoll(capacity: 1024)
        var slots = [Slot](repeating: Slot(), count: connections)
        defer { for slot in slots where slot.fd >= 0 { close(slot.fd) } }
        var buffer = [UInt8](repeating: 0, count: 262_144)

        func send(_ index: Int, now: UInt64) {
            slots[index].sentAt = now
            slots[index].lastProgress = now
            slots[index].head.removeAll(keepingCapacity: true)
            slots[index].remaining = nil
            slots[index].closesAfter = false
            if Glibc.send(slots[index].fd, request, request.count, Int32(MSG_NOSIGNAL)) != request.count {
                window.fail()
            }
        }
        func connectSlot(_ index: Int) {
            if slots[index].fd >= 0 {
                poller.remove(slots[index].fd)
                close(slots[index].fd)
            }
            let fd = LoopbackSocket.connectedTCP(to: endpoint)
            slots[index].fd = fd
            guard fd >= 0 else {
                window.fail()
                slots[index].lastProgress = monotonicNanoseconds()
                return
            }
            poller.add(fd, token: UInt64(index), events: Epoll.readable)
            send(index, now: monotonicNanoseconds())
        }

        for index in 0..<connections { connectSlot(index) }
        window.startClock()
        var wasMeasuring = false
        var answeredOnce = 0
        var lastFirstAnswer = monotonicNanoseconds()
        var lastSweep = lastFirstAnswer
        var now = lastFirstAnswer
        while window.advance(now: now, settled: answeredOnce >= connections || now - lastFirstAnswer > 500_000_000) {
            if window.isMeasuring && !wasMeasuring {
                wasMeasuring = true
                for index in slots.indices { slots[index].completed = 0 }
            }
            poller.wait(timeoutMilliseconds: 5) { token, _ in
                let index = Int(token)
                let fd = slots[index].fd
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count < 0 && (errno == EAGAIN || errno == EINTR) { return }
                guard count > 0 else {
                    // Closed between responses (a server that times out idle keep-alive): reconnect quietly.
                    if !(slots[index].head.isEmpty && slots[index].remaining == nil && count == 0) { window.fail() }
                    connectSlot(index)
                    return
                }
                let arrived = monotonicNanoseconds()
                slots[index].lastProgress = arrived
                var body = count
                if slots[index].remaining == nil {
                    slots[index].head.append(contentsOf: buffer[0..<count])
                    guard let parsed = Self.parseHead(slots[index].head) else {
                        if slots[index].head.count > 65_536 {
                            window.fail()
                            connectSlot(index)
                        }
                        return
                    }
                    guard parsed.status == 200 else {
                        window.fail()
                        connectSlot(index)
                        return
                    }
                    body = slots[index].head.count - parsed.headLength
                    slots[index].remaining = parsed.contentLength
                    slots[index].closesAfter = parsed.closes
                }
                slots[index].remaining = (slots[index].remaining ?? 0) - body
                if window.isMeasuring { window.result.bytes += UInt64(body) }
                guard let remaining = slots[index].remaining, remaining <= 0 else { return }
                if !window.isMeasuring && slots[index].completed == 0 {
                    answeredOnce += 1
                    lastFirstAnswer = arrived
                }
                window.complete(started: slots[index].sentAt, now: arrived)
                slots[index].completed += 1
                if slots[index].closesAfter { connectSlot(index) } else { send(index, now: arrived) }
            }
            now = monotonicNanoseconds()
            if now - lastSweep > 100_000_000 {
                lastSweep = now
                for index in slots.indices where now - slots[index].lastProgress > stuckNanoseconds {
                    window.fail()
                    connectSlot(index)
                }
            }
        }
        var result = window.finish(now: monotonicNanoseconds())
        result.stalled = UInt64(slots.filter { $0.completed == 0 }.count)
        return result
    }

    /// The status, head length, Content-Length and whether the server closes after this response, once
    /// `bytes` hold a whole head; nil before.
    static func parseHead(_ bytes: [UInt8]) -> (status: Int, headLength: Int, contentLength: Int, closes: Bool)? {
        let end: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4, let at = (0...(bytes.count - 4)).first(where: { bytes[$0..<($0 + 4)].elementsEqual(end) })
        else { return nil }
        let text = String(decoding: bytes[0..<at], as: UTF8.self).lowercased()
        let lines = text.split(separator: "\r\n")
        guard let statusLine = lines.first else { return nil }
        let parts = statusLine.split(separator: " ")
        let status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        var length = 0
        var closes = statusLine.hasPrefix("http/1.0")
        for line in lines.dropFirst() {
            if line.hasPrefix("content-length:") {
                length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            } else if line.hasPrefix("connection:") {
                let value = line.dropFirst("connection:".count).trimmingCharacters(in: .whitespaces)
                closes = value == "close" ? true : (value == "keep-alive" ? false : closes)
            }
        }
        return (status, at + 4, length, closes)
    }
}
