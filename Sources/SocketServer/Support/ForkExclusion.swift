import Glibc

/// Keeps the library's own helper threads and a `ForkingMode` fork apart.
///
/// A child forked while another thread holds a lock of the Swift runtime, of swift-log or of stdio inherits
/// that lock held, with no thread to release it, and deadlocks when it needs it. `ForkingMode` forks with
/// `fork()` here; threads the library starts for its own work while a server may fork (the re-execution of
/// `ProcessRestart`, a demo's shutdown notice) run that work inside `excludingForks(_:)`, so no fork happens
/// meanwhile: the serving thread waits (connections queue in the backlog). Never call `shutdown()` inside,
/// which waits for a serving thread that may be waiting here.
///
/// A plain pthread mutex (ThreadSanitizer sees it): the child of `fork()` unlocks its copy with a thread id
/// other than the one that locked it, which an owner-checking `Mutex` would not allow.
package enum ForkExclusion {
    private static let mutex: Mutex = Mutex()

    /// `fork(2)` while no excluding work runs; unlocked again in the parent and in the child (whose only
    /// thread is the one that locked it), so that code in a child may exclude forks of its own.
    package static func fork() -> pid_t {
        // Lazy globals the child uses: initialised here, so no other thread can be inside their `once`.
        ThreadSanitizerHooks.resolve()
        // Read once: the child must not go through the lazy global's accessor again (seen under
        // ThreadSanitizer: a forked child spinning in that accessor's `once`).
        let raw = mutex.raw
        pthread_mutex_lock(raw)
        let pid = Glibc.fork()
        pthread_mutex_unlock(raw)
        return pid
    }

    /// Runs `body` while no `ForkingMode` fork can start. Not recursive: `body` must not exclude again.
    ///
    /// Not generic on purpose, and called first in the code it protects: a generic result type (an optional,
    /// a tuple) would have its metadata instantiated before the lock is taken, under the runtime's metadata
    /// cache lock, which a child forked at that moment inherits held (seen: forked HTTP children hung in
    /// `Optional`'s metadata cache). Pass results out through a captured variable.
    package static func excludingForks(_ body: () throws -> Void) rethrows {
        pthread_mutex_lock(mutex.raw)
        defer { pthread_mutex_unlock(mutex.raw) }
        try body()
    }

    /// A process-lifetime pthread mutex.
    private final class Mutex: @unchecked Sendable {
        let raw: UnsafeMutablePointer<pthread_mutex_t>

        init() {
            raw = .allocate(capacity: 1)
            pthread_mutex_init(raw, nil)
        }
    }
}
