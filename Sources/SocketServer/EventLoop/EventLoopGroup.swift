import CSocketServerShims
import Glibc

/// A fixed set of `EventLoop`s, each running on its own thread until `shutdown()`.
///
/// The loops of the event mode: a connection is adopted by one loop and stays there, so that its libevent
/// objects are only ever touched by that loop's thread. Other threads reach a loop through `execute(_:)`.
/// Costs one thread, one epoll descriptor and one notification descriptor per loop.
package final class EventLoopGroup: Sendable {
    /// The loops, in a fixed order; `loops[i]` runs on the i-th thread.
    package let loops: [EventLoop]
    private let threads: [OSThread]

    /// Creates `count` loops (at least one) and starts a thread running each.
    ///
    /// - Parameter name: a prefix for the threads' names (`name-0`, `name-1`, ...), shown by `top -H` and debuggers.
    /// - Throws: `SocketError` when a loop or a thread cannot be created; the ones already started are stopped.
    package init(count: Int, name: String = "event-loop") throws {
        var loops: [EventLoop] = []
        var threads: [OSThread] = []
        do {
            for index in 0..<max(count, 1) {
                let loop = try EventLoop()
                let threadName = "\(name)-\(index)"
                let thread = try OSThread {
                    Self.nameCurrentThread(threadName)
                    loop.run()
                }
                loops.append(loop)
                threads.append(thread)
            }
        } catch {
            for loop in loops { loop.exit() }
            for thread in threads { thread.join() }
            throw error
        }
        self.loops = loops
        self.threads = threads
    }

    /// Stops every loop after the tasks already accepted by `execute(_:)` have run, and joins the threads.
    ///
    /// From then on `execute(_:)` on these loops returns false and runs nothing. Idempotent and safe from
    /// several threads at once (the threads are joined once; a second caller may return before they have
    /// ended). Called on one of the group's own threads, that thread is detached instead of joined.
    package func shutdown() {
        for loop in loops { loop.stop() }
        for thread in threads { thread.join() }
    }

    /// A group dropped without `shutdown()` stops and joins its threads here.
    deinit {
        shutdown()
    }

    /// The number of CPUs this process may run on (its affinity mask), at least 1.
    ///
    /// Unlike the machine's core count, this honours `taskset` and container CPU sets.
    package static var availableProcessorCount: Int {
        // A 1,024-CPU mask, the size of glibc's `cpu_set_t`.
        var mask = [UInt64](repeating: 0, count: 16)
        let result = mask.withUnsafeMutableBytes { raw in
            raw.baseAddress.map { CSocketServerShims_sched_getaffinity(0, raw.count, $0) } ?? -1
        }
        guard result == 0 else { return max(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 1) }
        return max(mask.reduce(0) { $0 + $1.nonzeroBitCount }, 1)
    }

    private static func nameCurrentThread(_ name: String) {
        // Linux limits thread names to 15 bytes plus the terminator.
        let truncated = String(decoding: name.utf8.prefix(15), as: UTF8.self)
        _ = CSocketServerShims_pthread_setname_np(pthread_self(), truncated)
    }
}
