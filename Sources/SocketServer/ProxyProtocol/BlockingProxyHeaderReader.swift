import Glibc

extension ProxyProtocolConfiguration {
    /// Reads the PROXY header of a blocking connection on the calling thread, waiting with `poll` until
    /// `headerTimeout` has passed since the call; returns the address to treat as the client's.
    ///
    /// Used by `TCPServer.finishRequest` in the blocking modes (synchronous, threading, pool, forking), on
    /// the thread or child that runs the request.
    /// - Throws: `ProxyProtocolError` (untrusted peer, bad, late or cut-short header); `SocketError` when a
    ///   receive or `poll` fails.
    func readHeader(from socket: Socket, peer: SocketAddress) throws -> SocketAddress {
        guard trusts(peer) else { throw ProxyProtocolError.untrustedPeer(peer) }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: headerTimeout)
        var receiver = ProxyHeaderReceiver(configuration: self)
        while true {
            let descriptor = socket.fileDescriptor
            if case .complete(let header) = try receiver.step(descriptor) {
                return header.clientAddress(peer: peer)
            }
            let remaining = clock.now.duration(to: deadline)
            guard remaining > .zero else { throw ProxyProtocolError.headerTimedOut }
            var watched = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&watched, 1, Int32(clamping: remaining.wholeMillisecondsRoundedUp))
            if ready < 0 && errno != EINTR { throw SocketError(operation: "poll", code: errno) }
        }
    }
}

extension Duration {
    /// The duration in milliseconds, rounded up, so that a wait for it never ends early; 0 for a negative one.
    var wholeMillisecondsRoundedUp: Int64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        let (milliseconds, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        guard !overflow else { return .max }
        let fraction = (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return milliseconds.addingReportingOverflow(fraction).overflow ? .max : milliseconds + fraction
    }
}
