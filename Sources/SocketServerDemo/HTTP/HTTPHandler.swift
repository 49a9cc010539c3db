import Glibc
import Logging
import SocketServer

/// Serves HTTP requests on one connection until it closes, goes idle, or keep-alive ends.
///
/// Each request head must arrive within the service's timeout (so a slow or silent client costs only its own
/// connection), and a kept-alive connection is closed once that long passes without a new request. After an
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

    /// Sends the head and, unless `includeBody` is false, the body; returns the body bytes sent.
    ///
    /// If a file ends early (truncated while being sent), the connection is closed so the client sees a
    /// short body rather than a wrong one.
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
        case .file(let file):
            return try sendFile(file, after: output)
        }
    }

    private func sendFile(_ file: StaticFile, after head: [UInt8]) throws -> Int {
        let chunkSize = 64 * 1024
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        var pending = head
        var sent = 0
        while sent < file.size {
            let wanted = min(chunkSize, file.size - sent)
            let count = chunk.withUnsafeMutableBytes { file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<wanted])) }
            guard count > 0 else {
                try wfile.write(pending)
                throw SocketError(operation: "read", code: EIO)  // the file shrank while being sent
            }
            pending += chunk[..<count]
            try wfile.write(pending)
            pending.removeAll(keepingCapacity: true)
            sent += count
        }
        if !pending.isEmpty { try wfile.write(pending) }
        return sent
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
