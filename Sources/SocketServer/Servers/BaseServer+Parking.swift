import Glibc
import Logging

/// Parked connections: a blocking-mode handler hands its connection back between requests
/// (`StreamRequestHandler.parkConnection(idleTimeout:)`), the connection waits on the serving loop, and
/// when its next bytes arrive it goes to the mode again as a new request, so that a fresh handler serves it.
///
/// The design, per mode:
/// - **Synchronous, threading, pool.** `parkConnection` moves the descriptor out of the handler's socket
///   (which is left closed, so the `shutdownRequest` that ends the handler's request finds nothing to close)
///   into a socket of the server's, and asks the serving loop to watch it. Readable: one `recv(MSG_PEEK)`
///   tells a new request from a client that closed; a request queues the connection behind the others
///   whose requests came, and they go to `processRequest` in that order whenever the mode takes requests
///   (a full pool queue, a thread cap or `maxChildren` makes them wait, as new connections wait in the
///   backlog meanwhile). `verifyRequest` is not asked again: the connection was verified when accepted.
///   No byte arrives within the idle timeout: the server ends it with `shutdownRequest`.
/// - **Forking.** The parent keeps its copy of each child's connection until the child has exited. A
///   child whose handler parks leaves the connection open and, as it exits, writes the idle timeout (with the
///   bytes it counted, for the observer: `ChildReport`) into a pipe the parent made for it; the parent,
///   reaping it, reads the pipe and parks its own copy as above.
///   A child that does not park ends its connection as before and the parent closes its copy at the reap.
///   Each child closes the other connections the parent holds, right after `fork`.
extension BaseServer {
    /// Takes `connection` from a handler to wait on the serving loop for its next request; see the
    /// extension's documentation. Safe from any thread (and in a forked child).
    ///
    /// - Returns: true when the connection was taken (the handler must not use it again; it is closed
    ///   at once when the server is not serving after all); false when parking is not possible now (the
    ///   server is not in `serveForever`, is shutting down, or the forked child has no channel to its
    ///   parent), and the connection is untouched.
    func parkConnection(_ connection: Socket, clientAddress: SocketAddress, idleTimeout: Duration) -> Bool {
        if parking.childChannel >= 0 { return parkInParent(connection, idleTimeout: idleTimeout) }
        guard let loop = loopTakingParkedConnections else { return false }
        let descriptor = connection.detach()
        guard descriptor >= 0 else { return false }
        let socket = Socket(
            adopting: descriptor, family: connection.family, type: connection.type,
            nonBlocking: connection.isNonBlocking)
        if observer != nil { ObservedConnection.handOver(from: connection, to: socket) }
        let accepted = loop.execute { [weak self] in
            guard let self else {
                socket.close()
                return
            }
            self.startParking(socket, clientAddress: clientAddress, idleTimeout: idleTimeout, loop: loop)
        }
        if !accepted { endParkedConnection(socket) }
        return true
    }

    /// Parks a connection the server already holds (the forking parent's copy); on the serving loop's
    /// thread when it runs, else from any thread. Closes it when the server is not serving.
    func parkHeldConnection(_ socket: Socket, clientAddress: SocketAddress, idleTimeout: Duration) {
        guard let loop = loopTakingParkedConnections else {
            endParkedConnection(socket)
            return
        }
        if loop.isInLoopThread {
            startParking(socket, clientAddress: clientAddress, idleTimeout: idleTimeout, loop: loop)
            return
        }
        let accepted = loop.execute { [weak self] in
            guard let self else {
                socket.close()
                return
            }
            self.startParking(socket, clientAddress: clientAddress, idleTimeout: idleTimeout, loop: loop)
        }
        if !accepted { endParkedConnection(socket) }
    }

    /// How many connections wait on the serving loop for their next request, or have it and wait for the
    /// mode. Read it on the serving thread (a mode's `serviceActions`, a test after serving stopped).
    package var parkedConnectionCount: Int { parking.parkedCount + parking.resumedCount }

    /// The child's half of parking in forking mode: leave the connection open for the parent, which the
    /// child's exit report tells (`ChildReport`, written by `ForkingMode` as the child exits).
    private func parkInParent(_ connection: Socket, idleTimeout: Duration) -> Bool {
        guard parking.childParkTimeout == nil else { return false }
        parking.childParkTimeout = idleTimeout
        // The parent holds the same connection; the child's copy closes when it exits, untouched.
        _ = connection.detach()
        return true
    }

    /// Watches a parked connection; on the serving loop's thread.
    private func startParking(_ socket: Socket, clientAddress: SocketAddress, idleTimeout: Duration, loop: EventLoop) {
        parking.freeRetired()
        guard isServingForeverOnThisThread, !isShutdownRequested else {
            endParkedConnection(socket)
            return
        }
        let parked = parking.park(socket, clientAddress: clientAddress, timeout: idleTimeout, loop: loop) {
            [unowned self] entry, flags in
            self.parkedConnectionEvent(entry, flags: flags)
        }
        if !parked { endParkedConnection(socket) }
    }

    /// A parked connection became readable or idled out; on the serving loop's thread.
    private func parkedConnectionEvent(_ entry: ParkedConnections.Entry, flags: LoopEventFlags) {
        parking.unpark(entry)
        if flags.contains(.timeout) {
            logger.debug(
                "parked connection idle, closing",
                metadata: ["socketserver.client.address": "\(entry.clientAddress)"])
            endParkedConnection(entry.socket)
            return
        }
        var byte: UInt8 = 0
        let peeked = recv(entry.socket.fileDescriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        let code = errno
        if peeked == 0 || (peeked < 0 && code != EAGAIN && code != EWOULDBLOCK && code != EINTR) {
            // The client closed (or reset) while parked: nothing to serve.
            endParkedConnection(entry.socket, peerClosed: true)
            return
        }
        parking.enqueue(.init(socket: entry.socket, clientAddress: entry.clientAddress))
        applyAcceptingOnLoop()
    }

    /// Hands connections whose next request arrived to the mode, oldest first, while it takes requests;
    /// on the serving loop's thread.
    ///
    /// Fair to new connections: while one waits in the listener's backlog (a `poll` of the listener says
    /// so), resumed connections and the listener take turns for the mode's free slots, one each, so that
    /// neither a flood of new clients nor the kept-alive ones can starve the other.
    func dispatchResumedConnections() {
        while mode.isAcceptingRequests, !isShutdownRequested, parking.hasResumed {
            if parking.dispatchedSinceAccept > 0 && listenerHasPendingConnection { return }
            guard let next = parking.dequeue() else { return }
            parking.dispatchedSinceAccept += 1
            let request = Request.stream(next.socket)
            do {
                try processRequest(request, clientAddress: next.clientAddress)
            } catch {
                handleError(error, clientAddress: next.clientAddress)
                endParkedConnection(next.socket)
            }
        }
    }

    /// Whether a connection waits in the listener's backlog: one `poll` with no wait.
    private var listenerHasPendingConnection: Bool {
        let listener = fileDescriptor
        guard listener >= 0 else { return false }
        var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0 && entry.revents & Int16(POLLIN) != 0
    }

    /// Ends every parked connection (and those waiting for the mode): serving is over. On the serving
    /// thread, with the loop stopped.
    func closeParkedConnections() {
        for (socket, _) in parking.takeAll() {
            endParkedConnection(socket)
        }
    }
}
