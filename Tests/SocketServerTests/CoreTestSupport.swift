import Foundation
import CSocketServerShims
import Glibc
import Logging
import Synchronization

@testable import SocketServer

/// A swift-log handler that keeps every message, for asserting on what a server logged.
struct RecordingLogHandler: LogHandler {
    final class Store: Sendable {
        let entries = SanitizedMutex<[(Logger.Level, String, Logger.Metadata)]>([])
        var messages: [String] { entries.withLock { $0.map(\.1) } }
        var all: [(Logger.Level, String, Logger.Metadata)] { entries.withLock { $0 } }
    }

    let store: Store
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        store.entries.withLock { $0.append((event.level, event.message.description, event.metadata ?? [:])) }
    }

    /// A logger writing into a fresh store.
    static func makeLogger() -> (Logger, Store) {
        let store = Store()
        return (Logger(label: "test") { _ in RecordingLogHandler(store: store) }, store)
    }
}

/// A thread-safe counter / recorder for hook calls made on the serving thread or handler threads.
final class CallLog: Sendable {
    private let entries = SanitizedMutex<[String]>([])
    func record(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
    func count(_ entry: String) -> Int { entries.withLock { $0.filter { $0 == entry }.count } }
    func clear() { entries.withLock { $0.removeAll() } }
}

/// Sleeps the calling thread. Tests use it to pace a client or to hold a handler, never to wait for a
/// condition (that is `eventually`).
func pause(_ duration: Duration) {
    let (seconds, attoseconds) = duration.components
    guard seconds > 0 || attoseconds > 0 else { return }
    CSocketServerShims_sleep(seconds, attoseconds / 1_000_000_000)
}

/// Polls `condition` every 5 ms until it holds or `limit` passes; returns whether it held. The one way the
/// tests wait for something to happen.
func eventually(within limit: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while clock.now < deadline {
        if condition() { return true }
        pause(.milliseconds(5))
    }
    return condition()
}

/// Runs `body` on a thread of its own and waits at most `limit` for it to return: for checks whose point is
/// "does not hang", with a bound far above any honest duration. When `body` has not returned in time,
/// `unblock` runs (it must make `body` return, for example by closing what it waits for), the thread is
/// joined, and the result is false.
func returns(
    within limit: Duration,
    unblock: () -> Void = {},
    _ body: @escaping @Sendable () -> Void
) throws -> Bool {
    let finished = EventFlag()
    let thread = try OSThread {
        body()
        finished.set()
    }
    let inTime = eventually(within: limit) { finished.isSet }
    if !inTime { unblock() }
    thread.join()
    return inTime
}
