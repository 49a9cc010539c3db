import CLibEventShim
import Glibc

/// Process-wide libevent set-up, done once before the first event base exists.
///
/// libevent only gives a base its lock and its cross-thread notification channel when threading was enabled
/// before the base was created, and `event_active` / `event_base_loopexit` from another thread rely on both.
/// The same place turns SIGPIPE off: a peer that resets while we write must become an error, never a kill.
enum LibEvent {
    /// Runs the set-up the first time it is read; later reads cost one check of a lazily initialised global.
    static let initialized: Bool = {
        let threads = evthread_use_pthreads()
        signal(SIGPIPE, SIG_IGN)
        return threads == 0
    }()
}
