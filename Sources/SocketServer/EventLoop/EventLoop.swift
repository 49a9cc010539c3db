import CLibEventShim
import Glibc
import Synchronization

/// One libevent `event_base` and the thread that runs it.
///
/// The files of this folder (`EventLoop/`) are the only Swift code that calls libevent. Every other layer talks
/// to the loop through this type: `run()` on the thread that owns the loop, and the thread-safe `exit()` and
/// `execute(_:)` from anywhere else.
package final class EventLoop: @unchecked Sendable {
    /// The libevent base; touched only by `LoopEvent` and this type.
    let base: OpaquePointer
    private let pendingTasks = SanitizedMutex(TaskQueue())
    private let taskEvent: OpaquePointer
    private let runningThread = SanitizedMutex<pthread_t?>(nil)
    /// The thread inside `run()` as a plain number (0 while none), for the executor's cheap isolation check.
    private let runningThreadID = Atomic<UInt>(0)
    /// Swift concurrency jobs queued on this loop (see `LoopExecutor.swift`).
    let jobs = SanitizedMutex(JobQueue())
    /// Activated when jobs are queued; its callback runs a bounded batch of them.
    let jobEvent: OpaquePointer
    /// Jobs enqueued on the loop's own thread while a callback that drains them is running (see
    /// `LoopExecutor.swift`). Touched on the loop's thread only, never across a call that could re-enter it
    /// unguarded, so exclusivity checks are off.
    @exclusivity(unchecked) var localJobs = LocalJobQueue()

    /// Creates an event base with locking enabled, so that other threads can wake it.
    ///
    /// Costs an epoll descriptor and a notification descriptor until the loop is released.
    package init() throws {
        precondition(LibEvent.initialized, "libevent could not enable pthread locking")
        guard let base = event_base_new() else {
            throw SocketError(operation: "event_base_new", code: errno == 0 ? ENOMEM : errno)
        }
        guard let taskEvent = event_new(base, -1, 0, runPendingTasksCallback, nil) else {
            event_base_free(base)
            throw SocketError(operation: "event_new", code: ENOMEM)
        }
        guard let jobEvent = event_new(base, -1, 0, runJobsCallback, nil) else {
            event_free(taskEvent)
            event_base_free(base)
            throw SocketError(operation: "event_new", code: ENOMEM)
        }
        self.base = base
        self.taskEvent = taskEvent
        self.jobEvent = jobEvent
        // The events need `self` as their argument, which exists only now; re-assigning an idle event is allowed.
        _ = event_assign(taskEvent, base, -1, 0, runPendingTasksCallback, Unmanaged.passUnretained(self).toOpaque())
        _ = event_assign(jobEvent, base, -1, 0, runJobsCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        event_free(jobEvent)
        event_free(taskEvent)
        event_base_free(base)
    }

    /// Whether the calling thread is the one running this loop: one atomic load and a compare, cheap enough
    /// for every isolation check of the executor.
    package var isCurrentThreadRunningLoop: Bool {
        runningThreadID.load(ordering: .relaxed) == pthread_self()
    }

    /// Whether the calling thread is the one inside `run()` or `runOnce()`.
    package var isInLoopThread: Bool {
        runningThread.withLock { thread in
            guard let thread else { return false }
            return pthread_equal(thread, pthread_self()) != 0
        }
    }

    /// Runs the loop on the calling thread until `exit()` is called, even when no event is registered.
    ///
    /// After `stop()`, runs every task it accepted before returning, so that no accepted task is lost.
    package func run() {
        enter()
        defer { leave() }
        _ = event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY)
        if !pendingTasks.withLock({ $0.isAccepting }) {
            while runPendingTasks() || runJobs() {}
        }
    }

    /// Waits for the next batch of ready events, runs their callbacks, and returns.
    package func runOnce() {
        enter()
        defer { leave() }
        _ = event_base_loop(base, EVLOOP_ONCE)
    }

    /// Makes `run()` return once the callbacks of the current iteration are done. Safe from any thread.
    ///
    /// Uses `event_base_loopexit`, which is a one-shot timer inside the base and so, unlike `loopbreak`, is not
    /// lost when it arrives while the loop is between iterations.
    package func exit() {
        _ = event_base_loopexit(base, nil)
    }

    /// Runs `task` on the loop's thread during its next iteration. Safe from any thread.
    ///
    /// Costs one array append under a lock and one wake-up of the loop; tasks queued while the loop is not
    /// running run when it next runs.
    /// - Returns: true when the task was accepted and will run; false, without running it, once `stop()`
    ///   was called (the loop is stopping or has stopped for good).
    @discardableResult
    package func execute(_ task: @escaping @Sendable () -> Void) -> Bool {
        let accepted = pendingTasks.withLock { queue -> Bool in
            guard queue.isAccepting else { return false }
            queue.tasks.append(task)
            return true
        }
        if accepted { event_active(taskEvent, EV_READ, 0) }
        return accepted
    }

    /// Stops the loop for good: refuses new tasks (`execute` returns false from now on) and makes `run()`
    /// return once the tasks (and Swift jobs) it already accepted have run; Swift jobs enqueued later go to
    /// the global concurrent executor. Safe from any thread; idempotent.
    package func stop() {
        jobs.withLock { $0.isAccepting = false }
        pendingTasks.withLock { $0.isAccepting = false }
        exit()
    }

    /// Whether `stop()` has been called.
    package var isStopped: Bool { !pendingTasks.withLock { $0.isAccepting } }

    /// Runs the tasks queued so far; returns whether there were any.
    @discardableResult
    fileprivate func runPendingTasks() -> Bool {
        let tasks = pendingTasks.withLock { queue -> [@Sendable () -> Void] in
            let taken = queue.tasks
            queue.tasks.removeAll(keepingCapacity: true)
            return taken
        }
        for task in tasks { task() }
        return !tasks.isEmpty
    }

    private func enter() {
        runningThread.withLock { $0 = pthread_self() }
        runningThreadID.store(pthread_self(), ordering: .relaxed)
    }

    private func leave() {
        runningThreadID.store(0, ordering: .relaxed)
        runningThread.withLock { $0 = nil }
    }
}

/// The tasks `execute(_:)` queued, and whether it still takes new ones.
private struct TaskQueue {
    var tasks: [@Sendable () -> Void] = []
    var isAccepting = true
}

private func runPendingTasksCallback(_: Int32, _: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let argument else { return }
    Unmanaged<EventLoop>.fromOpaque(argument).takeUnretainedValue().runPendingTasks()
}
