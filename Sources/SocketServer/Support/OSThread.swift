import Glibc

/// A joinable POSIX thread running one closure; the small piece the threading modes and tests need.
///
/// Costs one `pthread_create` and one boxed closure. Join it, or create it detached; a joinable thread
/// that is never joined keeps its stack until the process exits.
package final class OSThread: @unchecked Sendable {
    private let thread: pthread_t

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
    }

    /// Waits for the thread to finish. Call at most once, and never on a detached thread.
    package func join() {
        _ = pthread_join(thread, nil)
    }
}

private final class ThreadBody: @unchecked Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}
