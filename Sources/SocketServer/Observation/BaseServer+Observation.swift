import Synchronization

extension BaseServer {
    /// Runs `finishRequest`, reporting the run to `observer` (request started/finished, and for a stream
    /// request the connection's end, since it was accepted, with the bytes its `RequestReader` and
    /// `RequestWriter` moved, unless the handler parked it) when one is set; with none, just `finishRequest`. Called by the
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
            // A connection the handler parked is reported when it really ends (`ObservedConnection`).
            if case .stream(let connection) = request, !connection.observedParked.load(ordering: .relaxed) {
                ObservedConnection.closed(connection, observer: observer, fallback: start)
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

extension BaseServer {
    /// Ends a parked connection (or one about to be parked) with `shutdownRequest`, or with `closeRequest`
    /// when the peer already closed it, reporting its end to the observer if one is set.
    func endParkedConnection(_ socket: Socket, peerClosed: Bool = false) {
        if let observer { ObservedConnection.closed(socket, observer: observer) }
        if peerClosed {
            closeRequest(.stream(socket))
        } else {
            shutdownRequest(.stream(socket))
        }
    }
}
