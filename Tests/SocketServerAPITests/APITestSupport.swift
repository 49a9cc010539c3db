import Dispatch
import Foundation
import SocketServer
import Synchronization
import Testing

/// Serves `server` on another thread while `body` runs, then shuts it down and closes it: public API only.
func whileServing(_ server: BaseServer, _ body: () throws -> Void) throws {
    let finished = DispatchSemaphore(value: 0)
    let failure = LockedBox<(any Error)?>(nil)
    DispatchQueue.global().async {
        do {
            try server.serveForever(pollInterval: .milliseconds(50))
        } catch {
            failure.set(error)
        }
        finished.signal()
    }
    defer {
        server.shutdown()
        #expect(finished.wait(timeout: .now() + .seconds(30)) == .success, "serveForever returned")
        server.serverClose()
        if let error = failure.get() { Issue.record("serveForever threw: \(error)") }
    }
    let deadline = ContinuousClock.now + .seconds(20)
    while !server.isServing && ContinuousClock.now < deadline {
        Thread.sleep(forTimeInterval: 0.005)
    }
    try body()
}

/// Sends `line` over a new connection to `address` and returns the reply line.
func roundTrip(_ line: String, to address: SocketAddress) throws -> String {
    let socket = try Socket(family: address.family, type: .stream)
    defer { socket.close() }
    socket.timeout = .seconds(20)
    try socket.connect(to: address)
    try socket.sendAll(Array(line.utf8))
    let reader = RequestReader(socket: socket)
    return String(decoding: try reader.readLine(), as: UTF8.self)
}

/// A value behind a lock, for results that cross threads in these tests. An `NSLock` (a pthread mutex,
/// which ThreadSanitizer sees) rather than `Synchronization.Mutex`, whose futex hand-off TSan cannot see on
/// Linux; the library's own answer to that, `SanitizedMutex`, is not public API.
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.withLock { value } }
    func set(_ newValue: Value) { lock.withLock { value = newValue } }
}
