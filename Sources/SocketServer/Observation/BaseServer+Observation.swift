extension BaseServer {
    /// Runs `finishRequest`, reporting the run to `observer` (request started/finished, and for a stream
    /// request the connection's end) when one is set; with none, just `finishRequest`. Called by the
    /// blocking modes on the thread that runs the request.
    package func observedFinishRequest(_ request: Request, clientAddress: SocketAddress) throws {
        guard let observer else {
            return try finishRequest(request, clientAddress: clientAddress)
        }
        let start = ContinuousClock.now
        observer.requestStarted()
        var failure: (any Error)?
        defer {
            let duration = ContinuousClock.now - start
            observer.requestFinished(duration: duration, error: failure)
            if request.isStream { observer.connectionClosed(duration: duration, bytesReceived: nil, bytesSent: nil) }
        }
        do {
            try finishRequest(request, clientAddress: clientAddress)
        } catch {
            failure = error
            throw error
        }
    }
}
