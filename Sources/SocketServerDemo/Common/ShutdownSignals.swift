import Glibc
import SocketServer

/// Turns SIGINT and SIGTERM into a graceful shutdown without a signal handler and without libevent.
///
/// `block()` masks both signals in the calling thread, and so in every thread and forked child started after
/// it; `watch(_:)` then starts one thread that takes them with `sigwait`, where any code may run (a signal
/// handler could only set a flag). The first signal runs the shutdown action on a thread of its own, so a
/// second signal, while in-flight requests finish, still reaches the watcher: it exits at once with status 1.
enum ShutdownSignals {
    private static let signals: [Int32] = [SIGINT, SIGTERM]

    /// Blocks SIGINT and SIGTERM. Call first thing in `main`, before any thread exists.
    static func block() {
        var set = signalSet()
        _ = pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Starts the watcher thread; `shutdown` runs (once) on its own thread when the first signal arrives.
    /// - Throws: `SocketError` when no thread can be started.
    static func watch(_ shutdown: @escaping @Sendable (_ signal: Int32) -> Void) throws {
        _ = try OSThread(detached: true) {
            var set = signalSet()
            var received: Int32 = 0
            var count = 0
            while sigwait(&set, &received) == 0 {
                count += 1
                if count > 1 {
                    writeToStandardError("socketserver-demo: second signal, exiting without waiting\n")
                    _exit(1)
                }
                let signal = received
                do {
                    _ = try OSThread(detached: true) { shutdown(signal) }
                } catch {
                    shutdown(signal)
                }
            }
        }
    }

    private static func signalSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        return set
    }
}
