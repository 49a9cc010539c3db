import Glibc
import Synchronization

/// A joinable POSIX thread running one closure; the small piece the threading modes and tests need.
///
/// Costs one `pthread_create` and one boxed closure. Join it, or create it detached; a joinable thread
/// that is never joined keeps its stack until the process exits. `join()` is safe to call more than once,
/// from several threads at once, and from the thread itself (which then detaches instead of waiting for
/// itself), so that an owner released on one of its own threads cannot deadlock or join twice.
package final class OSThread: Sendable {
    private let thread: pthread_t
    /// Set by the first `join()`; later calls return at once.
    private let claimed: Atomic<Bool>

    /// Starts `body` on a new thread.
    /// - Parameter detached: a detached thread cannot be joined and frees itself when `body` returns.
    /// - Throws: `SocketError` with the `pthread_create` error (for example `EAGAIN`).
    package init(detached: Bool = false, _ body: @escaping @Sendable () -> Void) throws {
        let box = Unmanaged.passRetained(ThreadBody(body))
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if detached { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
        var thread = pthread_t()
        let result = pthread_create(&thread, &attributes, { argument in
            guard let argument else { return nil }
            let body = Unmanaged<ThreadBody>.fromOpaque(argument).takeRetainedValue()
            body.run()
            return nil
        }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw SocketError(operation: "pthread_create", code: result)
        }
        self.thread = thread
        // A detached thread must never be joined: count it as claimed from the start.
        self.claimed = Atomic(detached)
    }

    /// Whether the calling thread is this thread.
    package var isCurrent: Bool { pthread_equal(thread, pthread_self()) != 0 }

    /// Waits for the thread to finish, once: later calls (and calls on a detached thread) return at once.
    /// Called on the thread itself, detaches it instead, so its stack is freed when it returns.
    package func join() {
        guard !claimed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if isCurrent {
            _ = pthread_detach(thread)
        } else {
            _ = pthread_join(thread, nil)
        }
    }
}

private final class ThreadBody: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}
