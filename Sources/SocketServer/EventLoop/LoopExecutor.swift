import CLibEventShim
import Glibc

/// Every `EventLoop` is a Swift executor: a `SerialExecutor` (an actor can run on it) and a `TaskExecutor`
/// (a task that prefers it runs its nonisolated async code on it), so async handlers run on the very thread
/// that saw their socket become readable (SE-0392, SE-0417).
///
/// `enqueue` appends the job to a ring under the loop's job lock and, when the ring was empty, activates the
/// loop's one persistent job event: libevent coalesces the wake-ups, so a burst of jobs from other threads
/// costs one notification, and a job enqueued on the loop thread itself costs none. The job event's callback
/// runs at most `jobBatchLimit` jobs and re-activates itself when more are waiting, so jobs that keep
/// re-enqueueing cannot starve the loop's I/O. No allocation per job. After `stop()` the loop forwards jobs to
/// the global concurrent executor, so a task that outlives its loop still finishes.
extension EventLoop: SerialExecutor, TaskExecutor {
    /// The most jobs run per activation of the job event before I/O gets its turn (NIO's figure).
    static let jobBatchLimit = 4096

    /// Queues `job` to run on the loop's thread. Safe from any thread.
    package func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let outcome = jobs.withLock { queue -> JobQueue.EnqueueOutcome in
            guard queue.isAccepting else { return .refused }
            let wasEmpty = queue.ring.isEmpty
            queue.ring.append(unowned)
            return wasEmpty ? .wake : .queued
        }
        switch outcome {
        case .wake: event_active(jobEvent, EV_READ, 0)
        case .queued: break
        case .refused: globalConcurrentExecutor.enqueue(ExecutorJob(unowned))
        }
    }

    /// This loop as an unowned serial executor, for actors whose `unownedExecutor` is a loop.
    package func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Whether the caller runs on this loop's thread (inside a job or a libevent callback alike): one atomic
    /// load and a compare.
    package func isIsolatingCurrentContext() -> Bool? {
        isCurrentThreadRunningLoop
    }

    /// Traps unless the caller runs on this loop's thread; what `assumeIsolated` relies on in libevent
    /// callbacks, which are not Swift jobs.
    package func checkIsolated() {
        precondition(isCurrentThreadRunningLoop, "not on the event loop's thread")
    }

    /// Runs up to `jobBatchLimit` queued jobs; returns whether any ran. Re-activates the job event when jobs
    /// are left. On the loop's thread only.
    @discardableResult
    func runJobs() -> Bool {
        var ran = 0
        while ran < Self.jobBatchLimit, let job = jobs.withLock({ $0.ring.popFirst() }) {
            job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
            ran += 1
        }
        if ran == Self.jobBatchLimit, jobs.withLock({ !$0.ring.isEmpty }) {
            event_active(jobEvent, EV_READ, 0)
        }
        return ran > 0
    }
}

/// The Swift jobs waiting for a loop, and whether it still takes them.
struct JobQueue: Sendable {
    enum EnqueueOutcome {
        case wake, queued, refused
    }

    var ring = RingQueue<UnownedJob>()
    var isAccepting = true
}

func runJobsCallback(_: Int32, _: Int16, _ argument: UnsafeMutableRawPointer?) {
    guard let argument else { return }
    Unmanaged<EventLoop>.fromOpaque(argument).takeUnretainedValue().runJobs()
}
