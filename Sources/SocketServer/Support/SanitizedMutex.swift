import Glibc
import Synchronization

/// Synchronization's `Mutex`, made visible to ThreadSanitizer.
///
/// On Linux a contended `Mutex` is handed from thread to thread by the kernel (`FUTEX_LOCK_PI`), inside
/// non-instrumented standard-library code, so ThreadSanitizer never sees the hand-off and reports races between
/// critical sections of one and the same mutex. This wrapper tells it about each acquire and release, only
/// when the process runs under ThreadSanitizer; otherwise the cost over a bare `Mutex` is one check of a nil
/// function pointer per lock and one heap object per mutex.
///
/// The value is a stored property guarded by a `Mutex<Void>`, not the `Mutex`'s own value: a generic class
/// holding a `Mutex<Value>` looked up that type's metadata in the runtime's cache every time one was
/// destroyed (about 900 instructions; a `Socket` has three of these, so it was the largest part of what a
/// connection cost in the blocking modes).
package final class SanitizedMutex<Value>: @unchecked Sendable {
    private let mutex = Mutex<Void>(())
    // Only touched while `mutex` is held, which is what makes the access exclusive.
    @exclusivity(unchecked) private var value: Value

    /// A mutex guarding `value`.
    package init(_ value: sending Value) {
        self.value = value
    }

    /// Runs `body` with exclusive access to the value.
    package func withLock<Result: Sendable>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        let address = Unmanaged.passUnretained(self).toOpaque()
        return try mutex.withLock { _ in
            ThreadSanitizerHooks.acquire?(address)
            defer { ThreadSanitizerHooks.release?(address) }
            return try body(&value)
        }
    }
}

/// ThreadSanitizer's annotation entry points, found at run time: present only in sanitized builds.
///
/// Each is a lazily initialised global, so its first use runs under a runtime `once`. A process that forks
/// must have run both before: a child forked while another thread was inside that `once` would wait for it
/// for ever (seen: a forked child hung in its first `SanitizedMutex` lock). `ForkExclusion.fork()` calls
/// `resolve()` first.
package enum ThreadSanitizerHooks {
    typealias Annotation = @convention(c) (UnsafeMutableRawPointer?) -> Void

    static let acquire = lookUp("__tsan_acquire")
    static let release = lookUp("__tsan_release")

    /// Finishes both lookups (waiting for another thread that is doing them); cheap once they are done.
    package static func resolve() {
        _ = acquire
        _ = release
    }

    private static func lookUp(_ name: String) -> Annotation? {
        // RTLD_DEFAULT is the null handle on glibc: search the executable and everything it loaded.
        guard let symbol = dlsym(nil, name) else { return nil }
        return unsafeBitCast(symbol, to: Annotation.self)
    }
}
