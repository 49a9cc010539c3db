import CLibEventShim
import Glibc

/// The object a `SocketEvents` reports to: subclassed by the connection type of the event mode.
///
/// A class rather than a protocol so that the C callback can reach it through one unretained pointer with no
/// existential box. The callbacks run on the loop's thread.
class SocketEventTarget {
    init() {}

    /// The socket is readable (data, end of file or an error is waiting).
    func socketReadable() {}

    /// The socket is writable again, or `SocketEvents.wakeWriter()` was called.
    func socketWritable() {}

    /// Nothing happened on the socket for the timeout given to `SocketEvents.update`.
    func socketTimedOut() {}
}

/// One socket's read and write interest on a loop, and its inactivity timer: three libevent events in a
/// single allocation.
///
/// Cheaper than separate `LoopEvent`s for the many connections of the event mode: one block of
/// `3 × event_get_struct_event_size()` bytes plus a small header, no closure and no extra object per event.
/// Register and remove interest only on the loop's thread. Call `close()` before the descriptor is closed:
/// libevent must forget the descriptor before its number can be reused.
///
/// The inactivity timeout is kept lazily: the read and write events carry no timeout (libevent would
/// reschedule a persistent event's timeout on every activation, about 700 instructions per request); each
/// callback only stamps the time, and the timer, armed once, restarts itself for what is left of the timeout
/// when it finds the socket was active meanwhile: one timer operation per timeout period, not per request.
struct SocketEvents: ~Copyable {
    private var storage: UnsafeMutableRawPointer?
    private var isReading = false
    private var isWriting = false

    /// What the C callbacks share, at the end of the block: reachable from their one context pointer.
    fileprivate struct Header {
        /// Not retained: the target owns the events and outlives them.
        var target: Unmanaged<SocketEventTarget>
        /// `SocketEvents.now()` of the last read or write callback, or of the last change of interest.
        var lastActivity: UInt64
        var timeoutNanoseconds: UInt64
        /// Whether read or write interest is registered: only then does inactivity count.
        var isWaiting: Bool
        /// Whether the timer event is pending.
        var isTimerArmed: Bool
    }

    /// Events not attached to any loop yet; `attach` makes them usable.
    init() {}

    /// Prepares (but does not register) read and write events for `descriptor`, reporting to `target`.
    ///
    /// `target` is not retained: it must outlive the events, which it does when it owns them.
    /// Returns false when the memory cannot be allocated or libevent rejects the descriptor.
    mutating func attach(loop: EventLoop, descriptor: Int32, target: SocketEventTarget) -> Bool {
        guard storage == nil else { return false }
        let size = Self.eventSize
        guard let block = malloc(size * 3 + MemoryLayout<Header>.stride) else { return false }
        let header = (block + size * 3).bindMemory(to: Header.self, capacity: 1)
        header.initialize(
            to: Header(
                target: Unmanaged.passUnretained(target), lastActivity: 0, timeoutNanoseconds: 0, isWaiting: false,
                isTimerArmed: false))
        let readFlags = Int16(EV_READ | EV_PERSIST)
        let writeFlags = Int16(EV_WRITE | EV_PERSIST)
        guard
            event_assign(OpaquePointer(block), loop.base, descriptor, readFlags, socketReadCallback, header) == 0,
            event_assign(OpaquePointer(block + size), loop.base, descriptor, writeFlags, socketWriteCallback, header)
                == 0,
            event_assign(OpaquePointer(block + size * 2), loop.base, -1, 0, socketTimerCallback, header) == 0
        else {
            free(block)
            return false
        }
        storage = block
        return true
    }

    deinit {
        if let storage { Self.release(storage) }
    }

    /// Registers or removes read and write interest; `timeout` is the inactivity allowed while either is
    /// registered.
    ///
    /// Activity is any read or write callback, or a change of interest (which restarts the timeout, as
    /// registering an event used to). Does nothing when the interest does not change.
    mutating func update(reading: Bool, writing: Bool, timeout: LoopTimeout?) {
        guard let storage, reading != isReading || writing != isWriting else { return }
        if reading != isReading { Self.apply(OpaquePointer(storage), enabled: reading) }
        if writing != isWriting { Self.apply(OpaquePointer(storage + Self.eventSize), enabled: writing) }
        isReading = reading
        isWriting = writing
        let header = Self.header(storage)
        header.pointee.isWaiting = reading || writing
        header.pointee.lastActivity = Self.now()
        if let timeout, reading || writing, !header.pointee.isTimerArmed {
            header.pointee.timeoutNanoseconds = timeout.nanoseconds
            header.pointee.isTimerArmed = event_add(OpaquePointer(storage + Self.eventSize * 2), timeout.pointer) == 0
        }
    }

    /// Makes the write callback run on the loop's next iteration, whether or not write interest is registered.
    ///
    /// How code outside a connection's own callbacks asks it to look at its state again.
    func wakeWriter() {
        guard let storage else { return }
        event_active(OpaquePointer(storage + Self.eventSize), EV_WRITE, 0)
    }

    /// Unregisters the events and frees them; later calls do nothing.
    mutating func close() {
        guard let storage else { return }
        Self.release(storage)
        self.storage = nil
        isReading = false
        isWriting = false
    }

    private static func release(_ storage: UnsafeMutableRawPointer) {
        for index in 0..<3 { _ = event_del(OpaquePointer(storage + eventSize * index)) }
        free(storage)
    }

    private static func apply(_ event: OpaquePointer, enabled: Bool) {
        _ = enabled ? event_add(event, nil) : event_del(event)
    }

    private static func header(_ storage: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Header> {
        (storage + eventSize * 3).assumingMemoryBound(to: Header.self)
    }

    /// Monotonic nanoseconds (clock_gettime through the vDSO: no system call).
    fileprivate static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// `struct event`'s size in the libevent we run against, rounded up to keep the next event aligned.
    private static let eventSize: Int = {
        let size = Int(event_get_struct_event_size())
        return (size + 15) & ~15
    }()

    /// The timer found the socket inactive for less than the timeout: wait for the rest of it.
    fileprivate static func restart(_ timer: OpaquePointer, after nanoseconds: UInt64) -> Bool {
        var interval = timeval()
        interval.tv_sec = Int(nanoseconds / 1_000_000_000)
        interval.tv_usec = Int(nanoseconds % 1_000_000_000 / 1000) + 1
        return event_add(timer, &interval) == 0
    }

    fileprivate static func timer(of header: UnsafeMutableRawPointer) -> OpaquePointer {
        OpaquePointer(header - eventSize)
    }
}

private func socketReadCallback(_: Int32, _: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let header = argument?.assumingMemoryBound(to: SocketEvents.Header.self) else { return }
    header.pointee.lastActivity = SocketEvents.now()
    header.pointee.target.takeUnretainedValue().socketReadable()
}

private func socketWriteCallback(_: Int32, _: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let header = argument?.assumingMemoryBound(to: SocketEvents.Header.self) else { return }
    header.pointee.lastActivity = SocketEvents.now()
    header.pointee.target.takeUnretainedValue().socketWritable()
}

/// The inactivity timer fired: time out, wait for the rest of the timeout, or (nothing registered) stop.
private func socketTimerCallback(_: Int32, _: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let argument else { return }
    let header = argument.assumingMemoryBound(to: SocketEvents.Header.self)
    header.pointee.isTimerArmed = false
    guard header.pointee.isWaiting else { return }
    let idle = SocketEvents.now() &- header.pointee.lastActivity
    let timeout = header.pointee.timeoutNanoseconds
    if idle < timeout {
        header.pointee.isTimerArmed = SocketEvents.restart(SocketEvents.timer(of: argument), after: timeout - idle)
    } else {
        header.pointee.target.takeUnretainedValue().socketTimedOut()
    }
}
