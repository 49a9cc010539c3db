extension ServerObserver {
    /// Runs `body` as one request: `requestStarted`, then `requestFinished` with its duration and what it
    /// threw. For the modes' observed paths only (with no observer they call the handler directly).
    package func observeRequest(_ body: () throws -> Void) throws {
        let start = ContinuousClock.now
        requestStarted()
        do {
            try body()
        } catch {
            requestFinished(duration: .now - start, error: error)
            throw error
        }
        requestFinished(duration: .now - start, error: nil)
    }
}
