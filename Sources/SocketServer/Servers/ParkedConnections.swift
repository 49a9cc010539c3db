import Glibc

/// The connections that blocking-mode handlers handed back between requests (`parkConnection`), waiting on
/// the server's own loop for their next bytes; and those whose bytes came, waiting for the mode to take them.
///
/// Owned by its server. Everything but `childChannel` is touched only on the serving loop's thread (through
/// `EventLoop.execute` from elsewhere), or on the serving thread while its loop is not running.
///
/// A parked connection costs one descriptor and one libevent event (about 200 bytes), and no thread, worker
/// or child. Its readiness is checked with one `recv(MSG_PEEK)`: a client that closed while parked is closed
/// here without waking a handler.
final class ParkedConnections: @unchecked Sendable {
    /// One parked connection.
    final class Entry {
        let socket: Socket
        let clientAddress: SocketAddress
        var event: LoopEvent?

        init(socket: Socket, clientAddress: SocketAddress) {
            self.socket = socket
            self.clientAddress = clientAddress
        }
    }

    /// A connection whose next request arrived, waiting for the mode to have room.
    struct Resumed {
        let socket: Socket
        let clientAddress: SocketAddress
    }

    // Loop-thread state (see the type's documentation), read at every readiness: no runtime exclusivity checks.
    @exclusivity(unchecked) private var parked: [ObjectIdentifier: Entry] = [:]
    @exclusivity(unchecked) private var resumed = RingQueue<Resumed>()

    /// In a forked child only: the write end of the pipe to the parent, which parks the connection once
    /// the child has exited; -1 everywhere else. Set by `ForkingMode` in the child, right after `fork`.
    var childChannel: Int32 = -1
    /// In a forked child only: the idle timeout the handler parked its connection with (nil: not parked; the
    /// child then leaves a parked connection alone), for the report it writes to its parent as it exits
    /// (`ChildReport`).
    var childParkTimeout: Duration?

    /// Resumed connections handed to the mode since the listener last accepted one: while new connections
    /// wait in the backlog, the two take turns for the mode's free slots (see `dispatchResumedConnections`).
    @exclusivity(unchecked) var dispatchedSinceAccept = 0

    /// How many connections wait for their next request.
    var parkedCount: Int { parked.count }
    /// How many connections have their next request and wait for the mode.
    var resumedCount: Int { resumed.count }

    /// The descriptors held here, which a forked child closes (it must not keep other clients' connections).
    var descriptors: [Int32] {
        parked.values.map { $0.socket.fileDescriptor } + resumed.map { $0.socket.fileDescriptor }
    }

    /// Starts watching `socket` on `loop`: `onReady` runs (on the loop) when bytes arrive, `onIdle` when
    /// `timeout` passes first or the client closed.
    func park(
        _ socket: Socket,
        clientAddress: SocketAddress,
        timeout: Duration,
        loop: EventLoop,
        onEvent: @escaping (Entry, LoopEventFlags) -> Void
    ) -> Bool {
        let entry = Entry(socket: socket, clientAddress: clientAddress)
        let event = LoopEvent(loop: loop, descriptor: socket.fileDescriptor, flags: [.read]) { [unowned entry] flags in
            onEvent(entry, flags)
        }
        guard event.isValid else { return false }
        entry.event = event
        parked[ObjectIdentifier(entry)] = entry
        event.add(timeout: timeout)
        return true
    }

    /// Stops watching `entry`; its event is freed after its callback has returned (on the next park or at
    /// the end of serving), never inside it.
    func unpark(_ entry: Entry) {
        entry.event?.remove()
        if let event = entry.event { retired.append(event) }
        entry.event = nil
        parked[ObjectIdentifier(entry)] = nil
    }

    /// Events of unparked connections, freed outside their own callbacks.
    private var retired: [LoopEvent] = []

    /// Frees the events of connections no longer parked; call it outside any of their callbacks.
    func freeRetired() {
        retired.removeAll()
    }

    /// Queues a connection whose next request arrived.
    func enqueue(_ connection: Resumed) {
        resumed.append(connection)
    }

    /// The oldest connection waiting for the mode.
    func dequeue() -> Resumed? {
        resumed.popFirst()
    }

    /// Whether no connection waits for the mode.
    var hasResumed: Bool { !resumed.isEmpty }

    /// Takes every connection out (parked or waiting for the mode), for the end of serving.
    func takeAll() -> [(Socket, SocketAddress)] {
        var all: [(Socket, SocketAddress)] = []
        for entry in parked.values {
            entry.event?.remove()
            entry.event = nil
            all.append((entry.socket, entry.clientAddress))
        }
        parked.removeAll()
        while let connection = resumed.popFirst() { all.append((connection.socket, connection.clientAddress)) }
        retired.removeAll()
        return all
    }
}
