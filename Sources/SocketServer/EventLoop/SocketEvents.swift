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

/// One socket's read and write interest on a loop: two persistent libevent events in a single allocation.
///
/// Cheaper than two `LoopEvent`s for the many connections of the event mode: one block of
/// `2 × event_get_struct_event_size()` bytes, no closure and no extra object per event. Register and remove
/// interest only on the loop's thread. Call `close()` before the descriptor is closed: libevent must forget
/// the descriptor before its number can be reused.
struct SocketEvents: ~Copyable {
    private var storage: UnsafeMutableRawPointer?
    private var isReading = false
    private var isWriting = false

    /// Events not attached to any loop yet; `attach` makes them usable.
    init() {}

    /// Prepares (but does not register) read and write events for `descriptor`, reporting to `target`.
    ///
    /// `target` is not retained: it must outlive the events, which it does when it owns them.
    /// Returns false when the memory cannot be allocated or libevent rejects the descriptor.
    mutating func attach(loop: EventLoop, descriptor: Int32, target: SocketEventTarget) -> Bool {
        guard storage == nil else { return false }
        let size = Self.eventSize
        guard let block = malloc(size * 2) else { return false }
        let context = Unmanaged.passUnretained(target).toOpaque()
        let readFlags = Int16(EV_READ | EV_PERSIST)
        let writeFlags = Int16(EV_WRITE | EV_PERSIST)
        guard
            event_assign(OpaquePointer(block), loop.base, descriptor, readFlags, socketReadCallback, context) == 0,
            event_assign(OpaquePointer(block + size), loop.base, descriptor, writeFlags, socketWriteCallback, context)
                == 0
        else {
            free(block)
            return false
        }
        storage = block
        return true
    }

    deinit {
        if let storage {
            _ = event_del(OpaquePointer(storage))
            _ = event_del(OpaquePointer(storage + Self.eventSize))
            free(storage)
        }
    }

    /// Registers or removes read and write interest; `timeout` applies to each registered event.
    ///
    /// A persistent event's timeout restarts whenever the event fires, so it measures inactivity. Does
    /// nothing when the interest does not change (an event already registered keeps its running timeout).
    mutating func update(reading: Bool, writing: Bool, timeout: LoopTimeout?) {
        guard let storage else { return }
        if reading != isReading {
            Self.apply(OpaquePointer(storage), enabled: reading, timeout: timeout)
        }
        if writing != isWriting {
            Self.apply(OpaquePointer(storage + Self.eventSize), enabled: writing, timeout: timeout)
        }
        isReading = reading
        isWriting = writing
    }

    /// Makes the write callback run on the loop's next iteration, whether or not write interest is registered.
    ///
    /// How code outside a connection's own callbacks asks it to look at its state again.
    func wakeWriter() {
        guard let storage else { return }
        event_active(OpaquePointer(storage + Self.eventSize), EV_WRITE, 0)
    }

    /// Unregisters both events and frees them; later calls do nothing.
    mutating func close() {
        guard let storage else { return }
        _ = event_del(OpaquePointer(storage))
        _ = event_del(OpaquePointer(storage + Self.eventSize))
        free(storage)
        self.storage = nil
        isReading = false
        isWriting = false
    }

    private static func apply(_ event: OpaquePointer, enabled: Bool, timeout: LoopTimeout?) {
        if !enabled {
            _ = event_del(event)
        } else if let timeout {
            _ = event_add(event, timeout.pointer)
        } else {
            _ = event_add(event, nil)
        }
    }

    /// `struct event`'s size in the libevent we run against, rounded up to keep the second event aligned.
    private static let eventSize: Int = {
        let size = Int(event_get_struct_event_size())
        return (size + 15) & ~15
    }()
}

private func socketReadCallback(_: Int32, _ flags: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let argument else { return }
    let target = Unmanaged<SocketEventTarget>.fromOpaque(argument).takeUnretainedValue()
    if flags & Int16(EV_TIMEOUT) != 0 {
        target.socketTimedOut()
    } else {
        target.socketReadable()
    }
}

private func socketWriteCallback(_: Int32, _ flags: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let argument else { return }
    let target = Unmanaged<SocketEventTarget>.fromOpaque(argument).takeUnretainedValue()
    if flags & Int16(EV_TIMEOUT) != 0 {
        target.socketTimedOut()
    } else {
        target.socketWritable()
    }
}
