import Glibc

/// One event-mode connection whose PROXY header is still arriving: read on the connection's loop, before
/// any handler exists, under the header timeout.
///
/// Owned by its `EventWorker` (in `pendingProxyHeaders`) from `start` until it finishes, fails or the
/// worker closes it; it owns the socket until then and one libevent event, freed with it. Loop-confined.
final class ProxyHeaderWait {
    private let socket: Socket
    private let peer: SocketAddress
    private let server: UnretainedServer
    private unowned let worker: EventWorker
    private let deadline: ContinuousClock.Instant
    private var receiver: ProxyHeaderReceiver
    private var event: LoopEvent?
    private let onHeader: (SocketAddress) -> Void
    /// The index in the worker's list, for O(1) removal.
    var registryIndex = -1

    init(
        socket: Socket,
        peer: SocketAddress,
        configuration: ProxyProtocolConfiguration,
        server: UnretainedServer,
        worker: EventWorker,
        onHeader: @escaping (SocketAddress) -> Void
    ) {
        self.socket = socket
        self.peer = peer
        self.server = server
        self.worker = worker
        self.deadline = ContinuousClock.now.advanced(by: configuration.headerTimeout)
        self.receiver = ProxyHeaderReceiver(configuration: configuration)
        self.onHeader = onHeader
    }

    /// Checks the peer, then reads what is there and waits for the rest. Runs on the loop's thread.
    func start(trusted: Bool) {
        guard trusted else { return fail(ProxyProtocolError.untrustedPeer(peer)) }
        event = LoopEvent(loop: worker.loop, descriptor: socket.fileDescriptor, flags: [.read]) { [unowned self] flags in
            if flags.contains(.timeout) && !flags.contains(.read) {
                fail(ProxyProtocolError.headerTimedOut)
            } else {
                advance()
            }
        }
        guard event?.isValid == true else { return fail(EventModeError.outOfMemory) }
        advance()
    }

    /// Closes the connection unserved (the server is closing). Runs on the loop's thread.
    func cancel(_ error: any Error) {
        fail(error, rejected: false)
    }

    private func advance() {
        do {
            switch try receiver.step(socket.fileDescriptor) {
            case .complete(let header):
                finish()
                onHeader(header.clientAddress(peer: peer))
            case .wait:
                let remaining = ContinuousClock.now.duration(to: deadline)
                guard remaining > .zero else { return fail(ProxyProtocolError.headerTimedOut) }
                event?.add(timeout: remaining)
            }
        } catch {
            fail(error)
        }
    }

    /// Stops watching and leaves the worker's list (for its retired one: never freed inside its own callback).
    private func finish() {
        event?.remove()
        worker.forgetProxyHeaderWait(self)
    }

    /// Closes the connection unserved; `rejected` (not when the server is closing) reports it to the
    /// observer as `.proxyHeader`.
    private func fail(_ error: any Error, rejected: Bool = true) {
        let peer = peer
        let socket = socket
        finish()
        server.with { server in
            if rejected, let observer = server.observer { observer.connectionRejected(.proxyHeader) }
            server.handleError(error, clientAddress: peer)
            server.shutdownRequest(.stream(socket))
        }
        worker.proxyHeaderConnectionClosed(server: server)
    }
}
