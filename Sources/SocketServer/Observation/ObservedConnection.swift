import Synchronization

/// What a blocking-mode server remembers of a connection for its `ServerObserver` across handler runs, so
/// that a connection parked between requests (`parkConnection`) is reported closed once, when it really ends,
/// with its whole duration and bytes. Kept on the connection's `Socket` as atomics: nothing is allocated, and
/// nothing is written when no observer is set.
enum ObservedConnection {
    /// The instant times are measured from: stamps are nanoseconds after it, so that they fit an atomic.
    private static let origin = ContinuousClock.now

    /// Records that `socket` was just accepted. Serving thread.
    static func accepted(_ socket: Socket) {
        let (nanoseconds, overflow) = (ContinuousClock.now - origin).nanosecondsSinceOrigin
        socket.observedOpenedAt.store(overflow ? 1 : max(nanoseconds, 1), ordering: .relaxed)
    }

    /// How long `socket` has been open: since `accepted(_:)`, or since `fallback` when it was never stamped.
    static func age(of socket: Socket, or fallback: ContinuousClock.Instant) -> Duration {
        let stamp = socket.observedOpenedAt.load(ordering: .relaxed)
        guard stamp > 0 else { return .now - fallback }
        return .now - (origin + .nanoseconds(stamp))
    }

    /// Moves what is known of `old`'s connection to `new`, the socket that takes over its descriptor when it
    /// parks; marks `old` as parked so that the handler run that ends now reports no close.
    static func handOver(from old: Socket, to new: Socket) {
        new.observedOpenedAt.store(old.observedOpenedAt.load(ordering: .relaxed), ordering: .relaxed)
        new.readerBytes.store(old.readerBytes.load(ordering: .relaxed), ordering: .relaxed)
        new.writerBytes.store(old.writerBytes.load(ordering: .relaxed), ordering: .relaxed)
        old.observedParked.store(true, ordering: .relaxed)
    }

    /// Reports the end of `socket`'s connection to `observer`, with its age and the bytes counted on it.
    static func closed(_ socket: Socket, observer: any ServerObserver, fallback: ContinuousClock.Instant = .now) {
        observer.connectionClosed(
            duration: age(of: socket, or: fallback), bytesReceived: socket.readerBytes.load(ordering: .relaxed),
            bytesSent: socket.writerBytes.load(ordering: .relaxed))
    }
}

extension Duration {
    /// The whole nanoseconds of this (non-negative) duration, and whether they overflow `Int`.
    fileprivate var nanosecondsSinceOrigin: (Int, Bool) {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = Int(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let (total, overflow2) = scaled.addingReportingOverflow(Int(attoseconds / 1_000_000_000))
        return (total, overflow || overflow2)
    }
}
