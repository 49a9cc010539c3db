/// Runs the async datagram handlers of one `EventMode`: one task per datagram, on a loop of the mode, and
/// the registry that lets `serverClose()` cancel the tasks still running at the shutdown deadline.
///
/// `start` runs on the serving thread; each task runs on its loop. Costs per datagram: the task, its
/// handler, and one insertion into and removal from the registry under its lock.
final class AsyncDatagramDispatcher: Sendable {
    private struct Running {
        var tasks: [UInt64: Task<Void, Never>] = [:]
        var nextID: UInt64 = 0
    }

    /// How many handlers run at once when the configuration's `maxConnections` is nil: 4,096.
    static let defaultMaxRunning = 4096

    let makeHandler: @Sendable (AsyncDatagramContext) throws -> AsyncDatagramRequestHandler
    private let running = SanitizedMutex(Running())

    init(makeHandler: @escaping @Sendable (AsyncDatagramContext) throws -> AsyncDatagramRequestHandler) {
        self.makeHandler = makeHandler
    }

    /// How many handler tasks are running.
    var runningCount: Int { running.withLock { $0.tasks.count } }

    /// Starts the task for one datagram on `context.loop`. `finished` runs when the task ends, with whether
    /// it ended on its loop (false past the shutdown deadline, once the loop stopped and the server may be
    /// gone).
    func start(_ context: AsyncDatagramContext, finished: @escaping @Sendable (_ onLoop: Bool) -> Void) {
        running.withLock { state in
            let id = state.nextID
            state.nextID &+= 1
            // Inserted under the lock the task's own removal takes, so the removal never comes first.
            state.tasks[id] = Task(executorPreference: context.loop) { [self] in
                let onLoop = await serve(context)
                running.withLock { _ = $0.tasks.removeValue(forKey: id) }
                finished(onLoop)
            }
        }
    }

    /// Cancels every running task (the shutdown deadline expired); their handlers see `CancellationError`
    /// from whatever they await. From any thread.
    func cancelAll() {
        let tasks = running.withLock { Array($0.tasks.values) }
        for task in tasks { task.cancel() }
    }

    /// Creates the handler and runs it; reports its error and ends the request on the loop. Returns whether
    /// it ended on the loop.
    private func serve(_ context: AsyncDatagramContext) async -> Bool {
        var failure: (any Error)?
        // One request per datagram's handler run, for the observer (captured: the server may be gone later).
        let observer = context.unretainedServer.with { $0.observer }
        let start = observer == nil ? nil : ContinuousClock.now
        if let observer { observer.requestStarted() }
        do {
            let handler = try makeHandler(context)
            try await handler.run()
        } catch {
            failure = error
        }
        if let observer, let start { observer.requestFinished(duration: .now - start, error: failure) }
        // Off the loop only past the shutdown deadline: then the server may be gone, so it is not touched.
        guard context.loop.isCurrentThreadRunningLoop else { return false }
        if let failure, !(failure is CancellationError && Task.isCancelled) {
            context.unretainedServer.with { $0.handleError(failure, clientAddress: context.clientAddress) }
        }
        context.unretainedServer.with { $0.shutdownRequest(context.request) }
        return true
    }
}
