import Glibc
import Logging
import SocketServer

/// Serves HTTP requests on one connection (the blocking modes: sync, threading, forking, pool).
///
/// Each request head must arrive within the service's timeout (so a slow or silent client costs only its own
/// connection). Between keep-alive requests, with nothing of the next one received, the handler parks the
/// connection (`parkConnection`): it waits on the server's loop for up to the keep-alive timeout, holding no
/// thread, worker or child, and a fresh handler serves its next request. Files are sent with `sendfile(2)`. After an
/// error response, or whenever the connection closes with input possibly unread, the handler half-closes
/// and drains briefly before closing, so the client reads the response instead of a reset.
/// The service context comes in as `dependencies`.
final class HTTPHandler: DependentStreamRequestHandler<ServiceContext> {
    private var context: ServiceContext?

    override var disableNagleAlgorithm: Bool { true }
    override var maxLineLength: Int { 8192 }

    override func setup() throws {
        try super.setup()
        let context = dependencies
        guard context.http != nil else {
            throw SocketServerError.unexpectedRequest("HTTPHandler needs HTTP settings")
        }
        ConnectionWaiter.prepare(connection, sendTimeout: context.timeout)
        self.context = context
    }

    override func handle() throws {
        guard let context, let settings = context.http else { return }
        let waiter = ConnectionWaiter(reader: rfile, drain: context.drain)
        let parser = HTTPRequestParser()
        do {
            var served = 0
            while true {
                let wait = served == 0 ? context.timeout : min(context.timeout, settings.keepAliveTimeout)
                let deadline = ContinuousClock.now + wait
                var started = false
                let request: HTTPRequest
                do {
                    let parsed = try parser.parse { maxLength, isFirst in
                        let line = try waiter.receive(until: deadline, leaveWhenDraining: isFirst && !started, isFresh: served == 0) {
                            try self.rfile.readLine(maxLength: maxLength)
                        }
                        started = true
                        // The waiter looks at the clock only when a tick passes with nothing received: a
                        // slowloris sending a line now and then never lets one pass, so check here too.
                        if line != nil && ContinuousClock.now >= deadline { throw ConnectionIdleError() }
                        return line
                    }
                    guard let parsed else { return }
                    request = parsed
                } catch let error as HTTPParseError {
                    guard let status = error.status else { return }
                    log(context, "-", status: status, bytes: 0)
                    try send(.page(status, detail: error.detail), keepAlive: false, includeBody: true)
                    lingeringClose()
                    return
                } catch is ConnectionIdleError {
                    if started || rfile.bufferedCount > 0 {
                        log(context, "-", status: .requestTimeout, bytes: 0)
                        try send(
                            .page(.requestTimeout, detail: "The request did not arrive in time."), keepAlive: false,
                            includeBody: true)
                        lingeringClose()
                    }
                    return
                }
                guard try serve(request, context: context, settings: settings, waiter: waiter, deadline: deadline)
                else { return }
                served += 1
                // Between requests with nothing of the next one here: give the connection back to the server
                // (no thread, worker or child waits on it), and a fresh handler serves the next request.
                if rfile.bufferedCount == 0 {
                    if parkConnection(idleTimeout: settings.keepAliveTimeout) { return }
                    // The only serving thread must not wait on one client.
                    if server.mode is SynchronousMode { return }
                }
            }
        } catch let error as SocketError where error.isDisconnect || error.isTimeout {
            context.logger.debug("connection lost", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
        } catch is ConnectionIdleError {
            context.logger.debug("client too slow", metadata: ["client": "\(clientAddress)"])
        }
    }

    /// Answers one request; returns whether the connection stays open for the next one.
    private func serve(
        _ request: HTTPRequest,
        context: ServiceContext,
        settings: HTTPSettings,
        waiter: ConnectionWaiter,
        deadline: ContinuousClock.Instant
    ) throws -> Bool {
        var keepAlive = settings.allowsKeepAlive && request.wantsKeepAlive && !context.drain.isDraining
        var response: StaticResponse
        do {
            switch try request.bodyFraming() {
            case .none:
                break
            case .length(let length) where length <= settings.maxDiscardedBody:
                // GET and HEAD bodies mean nothing here; reading them keeps the connection in step.
                _ = try waiter.receive(until: deadline, leaveWhenDraining: false) { try self.rfile.read(length) }
            case .length, .unsupported:
                keepAlive = false
            }
            response = StaticFileResponder.response(to: request, settings: settings)
            // A client that sent a bad request may be out of step with the protocol: do not read on.
            if response.head.status == .badRequest { keepAlive = false }
        } catch let error as HTTPParseError {
            keepAlive = false
            response = .page(error.status ?? .badRequest, detail: error.detail)
        }
        let bytes = try send(response, keepAlive: keepAlive, includeBody: request.method != "HEAD")
        log(context, request.requestLine, status: response.head.status, bytes: bytes)
        if !keepAlive { lingeringClose() }
        return keepAlive
    }

    /// Sends the head and, unless `includeBody` is false, the body (a file with `sendfile(2)`); returns the
    /// body bytes sent.
    @discardableResult
    private func send(_ response: StaticResponse, keepAlive: Bool, includeBody: Bool) throws -> Int {
        var output = response.head.serialized(keepAlive: keepAlive)
        guard includeBody else {
            try wfile.write(output)
            return 0
        }
        switch response.body {
        case .bytes(let body):
            output += body
            try wfile.write(output)
            return body.count
        case .file(let file, let offset, let length):
            // The file goes from the page cache to the socket in the kernel, the head in the same segment
            // as its first bytes; a file that shrank meanwhile throws, and the connection closes so the
            // client sees a short body rather than a wrong one.
            try wfile.sendFile(file.region(offset: offset, count: length), after: output)
            return length
        }
    }

    /// Half-closes, then reads and drops what the client still sends, for at most a second and 1 MiB, so that
    /// closing with unread input does not reset the connection before the client has read the response.
    private func lingeringClose() {
        try? connection.shutdown(.write)
        let deadline = ContinuousClock.now + .seconds(1)
        var discarded = 0
        while discarded < 1 << 20 && ContinuousClock.now < deadline {
            do {
                let bytes = try rfile.readAvailable()
                if bytes.isEmpty { return }
                discarded += bytes.count
            } catch let error as SocketError where error.isTimeout {
                continue
            } catch {
                return
            }
        }
    }

    private func log(_ context: ServiceContext, _ requestLine: String, status: HTTPStatus, bytes: Int) {
        context.logger.info(
            "\"\(requestLine)\" \(status.code) \(bytes)", metadata: ["client": "\(clientAddress)"])
    }
}
