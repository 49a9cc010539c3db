import CLibEventShim
import Glibc

/// A timeout shared by many events of one loop (libevent's "common timeout").
///
/// libevent keeps events with the same common timeout in a queue instead of its timer heap, so adding,
/// restarting and removing the idle timeout of thousands of connections costs O(1) instead of O(log n).
/// Valid for as long as its loop exists; use it only with events of that loop.
package struct LoopTimeout: @unchecked Sendable {
    /// Points into the loop's own table; libevent recognises it by its address.
    let pointer: UnsafePointer<timeval>
    /// The duration itself, for timers that restart for what is left of it (`SocketEvents`).
    let nanoseconds: UInt64

    /// Registers `duration` as a common timeout of `loop`; nil when libevent refuses (it keeps at most 256).
    ///
    /// Safe from any thread. Costs one small allocation inside the loop the first time a duration is used.
    package init?(_ duration: Duration, on loop: EventLoop) {
        var interval = timeval(duration)
        if interval.tv_sec == 0 && interval.tv_usec == 0 { interval.tv_usec = 1 }
        guard let pointer = event_base_init_common_timeout(loop.base, &interval) else { return nil }
        self.pointer = pointer
        self.nanoseconds = UInt64(interval.tv_sec) &* 1_000_000_000 &+ UInt64(interval.tv_usec) &* 1000
    }
}
