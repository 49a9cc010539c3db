import Testing

@testable import SocketServer

/// What a loop-local job run records: whether it ran, and on the loop's thread.
private struct JobRecord: Sendable {
    var ran = false
    var onLoop = false
}

/// What the loop saw around a `drainingJobs` call.
private struct DrainOutcome: Sendable {
    var ranInsideBody = true
    var usedLockedRing = true
    var ranBeforeReturn = false
    var ranOnLoop = false
}

/// The event loop as an executor: jobs enqueued on its own thread inside a socket callback run right after
/// that callback, from the loop-local ring, in the same loop turn (`EventLoop.drainingJobs`).
@Suite("Event loops as executors: loop-local jobs")
struct LoopExecutorTests {
    @Test("a task started inside a draining callback runs when the callback's work is done, on the loop, without the locked ring")
    func taskStartedInsideDrainingCallbackRunsRightAfterIt() async throws {
        let group = try EventLoopGroup(count: 1, name: "executor-test")
        defer { group.shutdown() }
        let loop = group.loops[0]
        let outcome = await withCheckedContinuation { (done: CheckedContinuation<DrainOutcome, Never>) in
            let accepted = loop.execute {
                let record = SanitizedMutex(JobRecord())
                var outcome = DrainOutcome()
                loop.drainingJobs {
                    Task(executorPreference: loop) {
                        let onLoop = loop.isCurrentThreadRunningLoop
                        record.withLock { $0 = JobRecord(ran: true, onLoop: onLoop) }
                    }
                    outcome.ranInsideBody = record.withLock { $0.ran }
                    outcome.usedLockedRing = loop.jobs.withLock { !$0.ring.isEmpty }
                }
                let after = record.withLock { $0 }
                outcome.ranBeforeReturn = after.ran
                outcome.ranOnLoop = after.onLoop
                done.resume(returning: outcome)
            }
            if !accepted { done.resume(returning: DrainOutcome()) }
        }
        #expect(!outcome.ranInsideBody, "the job ran inside the callback's own work")
        #expect(!outcome.usedLockedRing, "a job enqueued on the loop's thread went through the locked ring")
        #expect(outcome.ranBeforeReturn, "the job did not run when the callback's work was done")
        #expect(outcome.ranOnLoop)
    }

    @Test("a task started on the loop's thread outside a draining callback still runs, on the loop")
    func taskStartedOutsideDrainingCallbackRunsLater() async throws {
        let group = try EventLoopGroup(count: 1, name: "executor-test")
        defer { group.shutdown() }
        let loop = group.loops[0]
        let task = await withCheckedContinuation { (done: CheckedContinuation<Task<Bool, Never>?, Never>) in
            let accepted = loop.execute {
                done.resume(returning: Task(executorPreference: loop) { loop.isCurrentThreadRunningLoop })
            }
            if !accepted { done.resume(returning: nil) }
        }
        let ranOnLoop = await task?.value
        #expect(ranOnLoop == true)
    }

    @Test("jobs that a loop-local job enqueues run too, each on the loop, in the order they were enqueued")
    func nestedLocalJobsRunInOrder() async throws {
        let group = try EventLoopGroup(count: 1, name: "executor-test")
        defer { group.shutdown() }
        let loop = group.loops[0]
        let order = SanitizedMutex<[Int]>([])
        let tasks = await withCheckedContinuation { (done: CheckedContinuation<[Task<Void, Never>], Never>) in
            let accepted = loop.execute {
                var tasks: [Task<Void, Never>] = []
                loop.drainingJobs {
                    for index in 0..<50 {
                        tasks.append(
                            Task(executorPreference: loop) {
                                let first = loop.isCurrentThreadRunningLoop ? index : -1
                                order.withLock { $0.append(first) }
                                await Task.yield()
                                let second = loop.isCurrentThreadRunningLoop ? 100 + index : -1
                                order.withLock { $0.append(second) }
                            })
                    }
                }
                done.resume(returning: tasks)
            }
            if !accepted { done.resume(returning: []) }
        }
        for task in tasks { await task.value }
        let seen = order.withLock { $0 }
        #expect(seen.count == 100)
        #expect(Array(seen.prefix(50)) == Array(0..<50))
        #expect(Set(seen.suffix(50)) == Set(100..<150))
    }
}
