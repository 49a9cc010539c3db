extension BaseServer {
    /// Serves until the calling task is cancelled, then shuts down gracefully and closes: the Swift
    /// concurrency entry point of every server, in any mode.
    ///
    /// `serveForever` and `serverClose()` run on a thread of their own, so no thread of the cooperative pool
    /// is ever blocked; the calling task only awaits. Cancelling it is `shutdown()` followed by
    /// `serverClose()` (event-mode connections get their `shutdownTimeout`, the other modes finish the
    /// requests in flight). Usable in a task group next to other services:
    ///
    /// ```swift
    /// try await withThrowingDiscardingTaskGroup { group in
    ///     group.addTask { try await server.run() }
    ///     group.addTask { try await metricsExporter.run() }
    /// }
    /// ```
    /// - Throws: what `serveForever` throws (the server is closed either way); `SocketError` when no thread
    ///   can be started; `SocketServerError.serverClosed` after `serverClose()`.
    public func run(pollInterval: Duration = .milliseconds(500)) async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                do {
                    _ = try OSThread(detached: true) { [self] in
                        do {
                            try serveForever(pollInterval: pollInterval)
                            serverClose()
                            continuation.resume()
                        } catch {
                            serverClose()
                            continuation.resume(throwing: error)
                        }
                    }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            requestShutdown()
        }
    }
}
