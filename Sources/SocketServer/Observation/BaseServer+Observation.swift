import Synchronization

extension BaseServer {
    /// Runs `finishRequest`, reporting the run to `observer` (request started/finished, and for a stream
    /// request the connection's end, with the bytes its `RequestReader` and `RequestWriter` moved) when one
    /// is set; with none, just `finishRequest`. Called by the
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
            if case .stream(let connection) = request {
                observer.connectionClosed(
                    duration: duration, bytesReceived: connection.readerBytes.load(ordering: .relaxed),
                    bytesSent: connection.writerBytes.load(ordering: .relaxed))
            }
        }
        do {
            try finishRequest(request, clientAddress: clientAddress)
        } catch {
            failure = error
            throw error
        }
    }
}
