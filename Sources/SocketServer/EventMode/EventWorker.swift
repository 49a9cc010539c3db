import Glibc

/// One loop of the event mode and the connections it owns.
///
/// Thread-confined: everything but `loop`, `index` and `configuration` is touched only on the loop's thread
/// (through `loop.execute` from elsewhere), which is what makes the unchecked `Sendable` sound.
final class EventWorker: @unchecked Sendable {
    let loop: EventLoop
    let index: Int
    let configuration: EventMode.Configuration
    let idleTimeout: LoopTimeout?
    /// The one receive buffer of the loop: connections read into it and their handlers see it directly.
    let receiveBuffer: UnsafeMutableRawBufferPointer
    /// Where the small writes a handler makes during one callback collect, so that they leave in one send.
    /// Only the connection whose callback is running uses it, and empties it before the callback ends.
    let stagingBuffer: UnsafeMutableRawBufferPointer
    /// How many bytes `stagingBuffer` holds. (This and the run are read and written on every echoed request,
    /// on the loop's thread only and never across a call: no runtime exclusivity checks, as in `StreamConnection`.)
    @exclusivity(unchecked) var stagedCount = 0
    /// Written bytes that are still where they were received (an echo): a run of `receiveBuffer` sent
    /// without a copy when the callback ends. Never set while `stagedCount` is not 0.
    @exclusivity(unchecked) var runStart: UnsafeRawPointer?
    /// The length of that run.
    @exclusivity(unchecked) var runCount = 0
    /// Not retained (the mode owns its workers). Used only on the loop's thread while the loop runs or drains
    /// its last tasks, which happens inside `EventMode.serverClose`, so the mode is alive whenever it is read.
    private unowned(unsafe) let mode: EventMode
    private var connections: [StreamConnection] = []
    /// Set by `closeAll`: the loop is about to stop, so a connection handed over later is closed at once.
    private(set) var isClosed = false
    /// Connections still sending their PROXY header (no handler yet).
    var pendingProxyHeaders: [ProxyHeaderWait] = []
    /// Header waits that have ended, kept until the next one starts so that none is freed inside its own
    /// event's callback.
    var retiredProxyHeaderWaits: [ProxyHeaderWait] = []

    init(loop: EventLoop, index: Int, mode: EventMode) {
        self.loop = loop
        self.index = index
        self.mode = mode
        self.configuration = mode.configuration
        self.idleTimeout = mode.configuration.idleTimeout.flatMap { LoopTimeout($0, on: loop) }
        self.receiveBuffer = .allocate(byteCount: mode.configuration.readChunkSize, alignment: 16)
        // As large as one receive, so that echoing a whole read of small messages takes one send.
        self.stagingBuffer = .allocate(byteCount: max(mode.configuration.readChunkSize, 64 * 1024), alignment: 16)
    }

    /// Where a connection's transport (TLS) puts the bytes it produced before they are sent: allocated on
    /// first use, so a loop without secured connections never has it.
    private var transportBufferStorage: UnsafeMutableRawBufferPointer?
    /// Where a secured connection reads the next chunk of a file it sends (see `fileChunkBuffer`).
    private var fileChunkBufferStorage: UnsafeMutableRawBufferPointer?
    /// The loop's handshake timeout, registered on first use (see `timeout(_:)`).
    private var handshakeTimeout: (duration: Duration, timeout: LoopTimeout?)?

    deinit {
        receiveBuffer.deallocate()
        stagingBuffer.deallocate()
        transportBufferStorage?.deallocate()
        fileChunkBufferStorage?.deallocate()
    }

    /// The transports' output buffer; on the loop's thread.
    var transportBuffer: UnsafeMutableRawBufferPointer {
        if let transportBufferStorage { return transportBufferStorage }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        transportBufferStorage = buffer
        return buffer
    }

    /// The plaintext of a file a secured connection sends, one 64 KiB chunk at a time (`sendfile` would bypass
    /// TLS): allocated on first use; on the loop's thread, used only within one call.
    var fileChunkBuffer: UnsafeMutableRawBufferPointer {
        if let fileChunkBufferStorage { return fileChunkBufferStorage }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        fileChunkBufferStorage = buffer
        return buffer
    }

    /// `duration` as a common timeout of this loop (the handshake timeout of secured connections), cached
    /// for the last duration asked for; on the loop's thread.
    func timeout(_ duration: Duration) -> LoopTimeout? {
        if let handshakeTimeout, handshakeTimeout.duration == duration { return handshakeTimeout.timeout }
        let timeout = LoopTimeout(duration, on: loop)
        handshakeTimeout = (duration, timeout)
        return timeout
    }

    /// Whether `bytes` lie inside `receiveBuffer`, which stays valid until the current callback returns.
    func isInReceiveBuffer(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let start = bytes.baseAddress, let base = receiveBuffer.baseAddress else { return false }
        return start >= UnsafeRawPointer(base) && start + bytes.count <= UnsafeRawPointer(base) + receiveBuffer.count
    }

    /// The number of connections this loop owns; read it on the loop's thread.
    var connectionCount: Int { connections.count }

    /// Takes over an accepted, non-blocking connection. Runs on the loop's thread.
    func adopt(_ socket: Socket, clientAddress: SocketAddress, server: UnretainedServer, handler: EventStreamHandler) {
        guard !isClosed else {
            // Accepted just before the shutdown deadline closed this loop: never served, so never opened.
            server.with { $0.shutdownRequest(.stream(socket)) }
            mode.connectionClosed(server: server)
            return
        }
        let transport: (any EventStreamTransport)?
        do {
            transport = try server.with { $0.connectionSecurity }?.makeEventTransport(
                for: socket, clientAddress: clientAddress)
        } catch {
            server.with {
                $0.handleError(error, clientAddress: clientAddress)
                $0.shutdownRequest(.stream(socket))
            }
            mode.connectionClosed(server: server)
            return
        }
        let connection = StreamConnection(
            socket: socket,
            clientAddress: clientAddress,
            server: server,
            handler: handler,
            worker: self,
            transport: transport
        )
        connection.registryIndex = connections.count
        connections.append(connection)
        guard connection.open() else {
            server.with {
                $0.handleError(SocketError(operation: "event_assign", code: ENOMEM), clientAddress: clientAddress)
            }
            connection.forceClose(EventModeError.outOfMemory)
            return
        }
    }

    /// Tells every handler that the server is closing. Runs on the loop's thread.
    func noticeShutdown() {
        cancelProxyHeaderWaits(EventModeError.shutdownDeadlineExpired)
        for connection in connections {
            connection.noticeShutdown()
        }
    }

    /// Closes every connection left, dropping queued output. Runs on the loop's thread.
    func closeAll(_ error: any Error) {
        isClosed = true
        cancelProxyHeaderWaits(error)
        retiredProxyHeaderWaits.removeAll()
        while let connection = connections.last {
            connection.forceClose(error)
        }
    }

    /// A connection that never got past its PROXY header has closed. Runs on the loop's thread.
    func proxyHeaderConnectionClosed(server: UnretainedServer) {
        mode.connectionClosed(server: server)
    }

    /// Forgets a closed connection. Runs on the loop's thread.
    func remove(_ connection: StreamConnection) {
        let index = connection.registryIndex
        guard index >= 0, index < connections.count, connections[index] === connection else { return }
        let last = connections.removeLast()
        if last !== connection {
            connections[index] = last
            last.registryIndex = index
        }
        connection.registryIndex = -1
        mode.connectionClosed(server: connection.server)
    }
}

extension EventWorker {
    /// Reads a connection's PROXY header on this loop, then calls `onHeader` with the client's address;
    /// a bad, late or untrusted header closes the connection (reported to `handleError`). Runs on the loop's
    /// thread.
    func readProxyHeader(
        of socket: Socket,
        peer: SocketAddress,
        configuration: ProxyProtocolConfiguration,
        server: UnretainedServer,
        onHeader: @escaping (SocketAddress) -> Void
    ) {
        retiredProxyHeaderWaits.removeAll()
        guard !isClosed else {
            server.with { $0.shutdownRequest(.stream(socket)) }
            proxyHeaderConnectionClosed(server: server)
            return
        }
        let wait = ProxyHeaderWait(
            socket: socket, peer: peer, configuration: configuration, server: server, worker: self, onHeader: onHeader)
        wait.registryIndex = pendingProxyHeaders.count
        pendingProxyHeaders.append(wait)
        wait.start(trusted: configuration.trusts(peer))
    }

    /// Removes a finished header wait from the list. Runs on the loop's thread.
    func forgetProxyHeaderWait(_ wait: ProxyHeaderWait) {
        let index = wait.registryIndex
        guard index >= 0, index < pendingProxyHeaders.count, pendingProxyHeaders[index] === wait else { return }
        let last = pendingProxyHeaders.removeLast()
        if last !== wait {
            pendingProxyHeaders[index] = last
            last.registryIndex = index
        }
        wait.registryIndex = -1
        retiredProxyHeaderWaits.append(wait)
    }

    /// Closes every connection still sending its header: nothing was served on them yet.
    func cancelProxyHeaderWaits(_ error: any Error) {
        while let wait = pendingProxyHeaders.last {
            wait.cancel(error)
        }
    }
}
