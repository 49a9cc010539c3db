import CPerfEpoll
import Glibc

/// A thin owner of one epoll instance: registrations keyed by a 64-bit token, and a reusable event array.
final class Epoll {
    let fd: Int32
    private var events: [epoll_event]

    init(capacity: Int = 1024) {
        fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        events = Array(repeating: epoll_event(), count: capacity)
    }

    deinit { close(fd) }

    static let readable = UInt32(EPOLLIN.rawValue)
    static let writable = UInt32(EPOLLOUT.rawValue)

    func add(_ socket: Int32, token: UInt64, events mask: UInt32) {
        control(EPOLL_CTL_ADD, socket, token, mask)
    }

    func modify(_ socket: Int32, token: UInt64, events mask: UInt32) {
        control(EPOLL_CTL_MOD, socket, token, mask)
    }

    func remove(_ socket: Int32) {
        var unused = epoll_event()
        epoll_ctl(fd, EPOLL_CTL_DEL, socket, &unused)
    }

    private func control(_ operation: Int32, _ socket: Int32, _ token: UInt64, _ mask: UInt32) {
        var event = epoll_event()
        event.events = mask
        event.data.u64 = token
        epoll_ctl(fd, operation, socket, &event)
    }

    /// Waits up to `timeoutMilliseconds` and calls `body(token, events)` for each ready registration.
    func wait(timeoutMilliseconds: Int32, _ body: (UInt64, UInt32) -> Void) {
        let capacity = Int32(events.count)
        let count = events.withUnsafeMutableBufferPointer { epoll_wait(fd, $0.baseAddress, capacity, timeoutMilliseconds) }
        guard count > 0 else { return }
        for index in 0..<Int(count) {
            let event = events[index]
            body(event.data.u64, event.events)
        }
    }
}
