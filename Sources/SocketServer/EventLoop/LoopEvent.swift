import CLibEventShim
import Glibc

/// What a `LoopEvent` waits for, and what woke it.
package struct LoopEventFlags: OptionSet, Sendable {
    package let rawValue: Int16
    package init(rawValue: Int16) { self.rawValue = rawValue }

    /// The timeout given to `add(timeout:)` expired.
    package static let timeout = LoopEventFlags(rawValue: Int16(EV_TIMEOUT))
    /// The descriptor is readable (or, for a listening socket, a connection is waiting).
    package static let read = LoopEventFlags(rawValue: Int16(EV_READ))
    /// The descriptor is writable.
    package static let write = LoopEventFlags(rawValue: Int16(EV_WRITE))
    /// The event stays registered after it fires.
    package static let persist = LoopEventFlags(rawValue: Int16(EV_PERSIST))
}

/// One libevent `struct event`: a descriptor or timer watched by an `EventLoop`, with a Swift callback.
///
/// Owned by the code that created it and freed with it; freeing unregisters it. Add, remove and free it on the
/// loop's thread (or while the loop is not running). The callback closure is allocated once, at creation.
package final class LoopEvent {
    private var event: OpaquePointer?
    private let callback: (LoopEventFlags) -> Void

    /// Watches `descriptor` for `flags` (`.read`, `.write`, optionally `.persist`).
    package init(
        loop: EventLoop,
        descriptor: Int32,
        flags: LoopEventFlags,
        callback: @escaping (LoopEventFlags) -> Void
    ) {
        self.callback = callback
        self.event = event_new(loop.base, descriptor, flags.rawValue, loopEventCallback, nil)
        if let event {
            _ = event_assign(
                event, loop.base, descriptor, flags.rawValue, loopEventCallback,
                Unmanaged.passUnretained(self).toOpaque()
            )
        }
    }

    /// A timer: fires `callback` after the timeout given to `add(timeout:)`, repeatedly if `repeating`.
    package convenience init(timerOn loop: EventLoop, repeating: Bool, callback: @escaping (LoopEventFlags) -> Void) {
        self.init(loop: loop, descriptor: -1, flags: repeating ? .persist : [], callback: callback)
    }

    deinit {
        if let event { event_free(event) }
    }

    /// Whether libevent could allocate the event; a failed one ignores `add` and `remove`.
    package var isValid: Bool { event != nil }

    /// Registers the event, with an optional timeout after which it fires with `.timeout`.
    package func add(timeout: Duration? = nil) {
        guard let event else { return }
        if let timeout {
            var interval = timeval(timeout)
            _ = event_add(event, &interval)
        } else {
            _ = event_add(event, nil)
        }
    }

    /// Unregisters the event; it can be added again later.
    package func remove() {
        guard let event else { return }
        _ = event_del(event)
    }

    /// Whether the event is registered (waiting for its descriptor or timeout).
    package var isPending: Bool {
        guard let event else { return false }
        return event_pending(event, Int16(EV_READ | EV_WRITE | EV_TIMEOUT), nil) != 0
    }

    fileprivate func fire(_ flags: Int16) {
        callback(LoopEventFlags(rawValue: flags))
    }
}

private func loopEventCallback(_: Int32, _ flags: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let argument else { return }
    Unmanaged<LoopEvent>.fromOpaque(argument).takeUnretainedValue().fire(flags)
}

extension timeval {
    /// A `timeval` for a non-negative duration; negative durations become zero.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 {
            self.init(tv_sec: 0, tv_usec: 0)
        } else {
            self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        }
    }
}
