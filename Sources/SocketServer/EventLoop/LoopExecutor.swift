import CLibEventShim
import Glibc

/// Every `EventLoop` is a Swift executor: a `SerialExecutor` (an actor can run on it) and a `TaskExecutor`
/// (a task that prefers it runs its nonisolated async code on it), so async handlers run on the very thread
/// that saw their socket become readable (SE-0392, SE-0417).
///
/// `enqueue` appends the job to a ring under the loop's job lock and, when the ring was empty, activates the
/// loop's one persistent job event: libevent coalesces the wake-ups, so a burst of jobs from other threads
/// costs one notification. A job enqueued on the loop's thread inside a socket callback or a job (a handler
/// task resumed by the bytes just received) goes to a lock-free loop-local ring instead, run as soon as that
/// callback's work is done, in the same loop turn (`drainingJobs`). The job event's callback
/// runs at most `jobBatchLimit` jobs and re-activates itself when more are waiting, so jobs that keep
/// re-enqueueing cannot starve the loop's I/O. No allocation per job. After `stop()` the loop forwards jobs to
/// the global concurrent executor, so a task that outlives its loop still finishes.
extension EventLoop: SerialExecutor, TaskExecutor {
    /// The most jobs run per activation of the job event before I/O gets its turn (NIO's figure).
    static let jobBatchLimit = 4096

    /// Queues `job` to run on the loop's thread. Safe from any thread.
    package func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        // On the loop's thread inside a draining callback (a socket callback, `runJobs`): the job runs when
        // that callback's own work is done, in the same loop turn; no lock, no `event_active`.
        if isCurrentThreadRunningLoop && localJobs.isDraining {
            localJobs.ring.append(unowned)
            return
        }
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
    ///
    /// Every job runs with the loop as its task executor and no serial isolation (`runSynchronously(on:)`):
    /// the one `enqueue` serves both protocols, so a job cannot tell which one queued it, and nearly all are
    /// handler tasks resuming nonisolated code. Run isolated to the loop as a serial executor, each hop of such
    /// code to the generic executor (the entry of every nonisolated async function) could not run inline: the
    /// runtime re-enqueued the task, a whole job round trip per hop, about 6,000 instructions per echoed line.
    /// A job of an actor whose executor is the loop still runs on the loop's thread, alone (the loop is one
    /// thread); the runtime merely does not know it holds the actor, so that actor's next hop re-enqueues.
    @discardableResult
    func runJobs() -> Bool {
        let wasDraining = localJobs.isDraining
        localJobs.isDraining = true
        defer { localJobs.isDraining = wasDraining }
        var ran = 0
        while ran < Self.jobBatchLimit, let job = localJobs.ring.popFirst() ?? jobs.withLock({ $0.ring.popFirst() }) {
            job.runSynchronously(on: asUnownedTaskExecutor())
            ran += 1
        }
        if ran == Self.jobBatchLimit, !localJobs.ring.isEmpty || jobs.withLock({ !$0.ring.isEmpty }) {
            event_active(jobEvent, EV_READ, 0)
        }
        return ran > 0
    }

    /// Runs `body`, a libevent callback's work on this loop's thread, then (at most `jobBatchLimit` of) the
    /// jobs it made ready here: a handler task resumed by bytes that `body` received runs in the same loop
    /// turn, with no lock, no `event_active` and no second pass through libevent. Nested calls run their jobs
    /// once, at the outermost. Jobs left over go to the job event. Touch nothing `body` may have freed after
    /// it returns: only the loop, which the caller holds.
    func drainingJobs(_ body: () -> Void) {
        guard !localJobs.isDraining else {
            body()
            return
        }
        localJobs.isDraining = true
        body()
        var ran = 0
        while ran < Self.jobBatchLimit, let job = localJobs.ring.popFirst() {
            job.runSynchronously(on: asUnownedTaskExecutor())
            ran += 1
        }
        localJobs.isDraining = false
        if !localJobs.ring.isEmpty { event_active(jobEvent, EV_READ, 0) }
    }
}

/// The jobs a loop's own thread enqueued while a draining callback ran, and whether one is running. Loop
/// thread only, no lock.
struct LocalJobQueue {
    var ring = RingQueue<UnownedJob>()
    var isDraining = false
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
