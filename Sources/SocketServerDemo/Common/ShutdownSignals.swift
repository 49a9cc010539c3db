import Glibc
import SocketServer
import Synchronization

/// Turns SIGINT and SIGTERM into a graceful shutdown, and SIGUSR2 into a restart, without a signal handler
/// and without libevent.
///
/// `block()` masks the three signals in the calling thread, and so in every thread and forked child started
/// after it; `watch(restart:_:)` then starts one thread that takes them with `sigwait`, where any code may
/// run (a signal handler could only set a flag). The first SIGINT or SIGTERM runs the shutdown action on a
/// thread of its own, so a second one, while in-flight requests finish, still reaches the watcher: it exits
/// at once with status 1. SIGUSR2 runs the restart action on a thread of its own (one at a time, and none
/// once a shutdown began); when it returns true (the new process serves), the shutdown action runs.
enum ShutdownSignals {
    private static let signals: [Int32] = [SIGINT, SIGTERM, SIGUSR2]

    /// Blocks SIGINT, SIGTERM and SIGUSR2. Call first thing in `main`, before any thread exists.
    static func block() {
        var set = signalSet()
        _ = pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Starts the watcher thread; `shutdown` runs (once) on its own thread when the first SIGINT or SIGTERM
    /// arrives, or after `restart` succeeded. Without `restart`, SIGUSR2 is logged to stderr and ignored.
    /// - Throws: `SocketError` when no thread can be started.
    static func watch(
        restart: (@Sendable () -> Bool)? = nil,
        _ shutdown: @escaping @Sendable (_ signal: Int32) -> Void
    ) throws {
        let state = WatchState()
        _ = try OSThread(detached: true) {
            var set = signalSet()
            var received: Int32 = 0
            while sigwait(&set, &received) == 0 {
                let signal = received
                if signal == SIGUSR2 {
                    guard let restart else {
                        writeToStandardError("socketserver-demo: SIGUSR2 ignored (no restart in this process)\n")
                        continue
                    }
                    var began = false
                    ForkExclusion.excludingForks { began = state.beginRestart() }
                    guard began else { continue }
                    runDetached {
                        // `restart` keeps forks out itself (`ProcessRestart`); `shutdown` does too.
                        var shutsDown = false
                        if restart() { ForkExclusion.excludingForks { shutsDown = state.beginShutdown() } }
                        if shutsDown {
                            shutdown(signal)
                        } else {
                            ForkExclusion.excludingForks { state.endRestart() }
                        }
                    }
                    continue
                }
                var first = false
                ForkExclusion.excludingForks { first = state.beginShutdown() }
                guard first else {
                    writeToStandardError("socketserver-demo: second signal, exiting without waiting\n")
                    _exit(1)
                }
                runDetached { shutdown(signal) }
            }
        }
    }

    /// Runs `body` on a new thread (here when none can be started). The thread is created while no fork
    /// of a forking server runs: its first creation takes runtime locks a child would inherit held.
    private static func runDetached(_ body: @escaping @Sendable () -> Void) {
        var started = false
        ForkExclusion.excludingForks { started = (try? OSThread(detached: true) { body() }) != nil }
        if !started { body() }
    }

    private static func signalSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        return set
    }

    /// What the watcher has started: 0 nothing, 1 a restart, 2 a shutdown.
    private final class WatchState: Sendable {
        private let phase = Atomic(0)
        func beginRestart() -> Bool { phase.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged }
        func endRestart() { _ = phase.compareExchange(expected: 1, desired: 0, ordering: .acquiringAndReleasing) }
        func beginShutdown() -> Bool { phase.exchange(2, ordering: .acquiringAndReleasing) != 2 }
    }
}
