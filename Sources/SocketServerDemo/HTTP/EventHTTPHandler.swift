import Logging
import SocketServer

/// The static file service for `--mode event`: a non-blocking handler per connection on the mode's loops.
///
/// A request is handled once its whole head has arrived (`HTTPHeadScanner` enforces the 414/431 limits while
/// it waits, and answers a malformed request line with 400 at once); bodies of up to 64 KiB are skipped,
/// longer ones end keep-alive. A file is sent with `EventConnection.sendFile` (`sendfile(2)`, no copy
/// through user space); its unsent bytes count against the output watermark, so reading pauses until it
/// has gone and pipelined requests wait their turn. The mode's idle timeout (`--timeout`) answers a client
/// that stopped in the middle of a head with 408 and closes a silent one quietly. A head must also be
/// complete within `--timeout` of its first byte, as in the blocking modes: a slowloris that keeps the idle
/// timer alive with a byte or a header line now and then gets 408 with the first bytes that arrive past that
/// deadline. On shutdown a connection closes after its current response.
/// The service context comes in as `dependencies`.
final class EventHTTPHandler: DependentEventStreamHandler<ServiceContext> {
    private var context: ServiceContext?
    private var settings: HTTPSettings?
    private let parser = HTTPRequestParser()
    private var bodyBytesToSkip = 0
    /// A response (a file) is still on its way: whether to keep the connection open once it has gone.
    private var awaitingDrain: Bool?
    private var shuttingDown = false
    /// Whether any byte arrived: a connection that has sent nothing yet is about to send its first request,
    /// so a shutdown waits for it (up to the mode's `shutdownTimeout`) instead of closing it as idle.
    private var receivedAny = false
    /// When the first byte of the head being received arrived; nil between requests.
    private var headStarted: ContinuousClock.Instant?

    /// The mode's limits for this service: `--timeout` as the idle timeout, room for a maximal head.
    static func configuration(_ context: ServiceContext) -> EventMode.Configuration {
        EventMode.Configuration(idleTimeout: context.timeout, maxBufferedInput: 96 * 1024)
    }

    override func connectionOpened(_ connection: EventConnection) throws {
        let context = dependencies
        guard let settings = context.http else {
            throw SocketServerError.unexpectedRequest("EventHTTPHandler needs HTTP settings")
        }
        self.context = context
        self.settings = settings
    }

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        guard let context, let settings else { return }
        receivedAny = true
        while !connection.isClosed {
            if bodyBytesToSkip > 0 {
                let skipped = min(bodyBytesToSkip, input.count)
                input.consume(skipped)
                bodyBytesToSkip -= skipped
                if bodyBytesToSkip > 0 { return }
            }
            if awaitingDrain != nil {
                connection.pauseReading()
                return
            }
            switch HTTPHeadScanner.scan(input.readableBytes, parser: parser) {
            case .incomplete:
                if shuttingDown && input.isEmpty { connection.close() }
                guard !input.isEmpty else { return }
                // Only a head that arrives in pieces reads the clock.
                let now = ContinuousClock.now
                if let headStarted, headStarted.duration(to: now) > context.timeout {
                    fail(.requestTimeout, detail: "The request did not arrive in time.", on: connection, context: context)
                } else if headStarted == nil {
                    headStarted = now
                }
                return
            case .rejected(let error):
                fail(error, on: connection, context: context)
                return
            case .complete(let length):
                headStarted = nil
                guard let head = input.read(length) else { return }
                let request: HTTPRequest
                do {
                    guard let parsed = try HTTPHeadScanner.parse(Array(head), parser: parser) else { return }
                    request = parsed
                } catch let error as HTTPParseError {
                    fail(error, on: connection, context: context)
                    return
                }
                respond(to: request, on: connection, context: context, settings: settings)
            }
        }
    }

    override func outputDrained(on connection: EventConnection) throws {
        guard let keepAlive = awaitingDrain else { return }
        awaitingDrain = nil
        finishResponse(on: connection, keepAlive: keepAlive)
    }

    /// Idle for `--timeout`: a client in the middle of a head gets 408; a silent one is closed quietly.
    override func idleTimeoutExpired(on connection: EventConnection) -> Bool {
        guard let context, awaitingDrain == nil, bodyBytesToSkip == 0, connection.bufferedInputCount > 0 else {
            return false
        }
        fail(.requestTimeout, detail: "The request did not arrive in time.", on: connection, context: context)
        return true
    }

    override func serverShuttingDown(_ connection: EventConnection) {
        shuttingDown = true
        if receivedAny && awaitingDrain == nil && connection.bufferedInputCount == 0 { connection.close() }
    }

    override func connectionClosed(_ connection: EventConnection, error: (any Error)?) {
        awaitingDrain = nil
        if let error {
            context?.logger.debug(
                "connection closed", metadata: ["client": "\(connection.clientAddress)", "error": "\(error)"])
        }
    }

    private func respond(
        to request: HTTPRequest,
        on connection: EventConnection,
        context: ServiceContext,
        settings: HTTPSettings
    ) {
        var keepAlive = settings.allowsKeepAlive && request.wantsKeepAlive && !shuttingDown
        let response: StaticResponse
        do {
            switch try request.bodyFraming() {
            case .none: break
            case .length(let length) where length <= settings.maxDiscardedBody: bodyBytesToSkip = length
            case .length, .unsupported: keepAlive = false
            }
            response = StaticFileResponder.response(to: request, settings: settings)
            // A client that sent a bad request may be out of step with the protocol: do not read on.
            if response.head.status == .badRequest { keepAlive = false }
        } catch {
            keepAlive = false
            response = .page(error.status ?? .badRequest, detail: error.detail)
        }
        let includeBody = request.method != "HEAD"
        var output = response.head.serialized(keepAlive: keepAlive)
        var bodyBytes = 0
        var file: FileRegion?
        switch response.body {
        case .bytes(let body) where includeBody:
            output += body
            bodyBytes = body.count
        case .file(let opened, let offset, let length) where includeBody:
            file = opened.region(offset: offset, count: length)
            bodyBytes = length
        default:
            break
        }
        context.logger.info(
            "\"\(request.requestLine)\" \(response.head.status.code) \(bodyBytes)",
            metadata: ["client": "\(connection.clientAddress)"])
        if let file {
            _ = connection.sendFile(file, after: output)
        } else {
            _ = connection.write(output)
        }
        // After `sendFile` nothing is held back in the callback, so what is buffered is really queued.
        if file != nil && connection.bufferedOutputCount > 0 && !connection.isClosed {
            // The file is still on its way: read the next request once it has gone.
            awaitingDrain = keepAlive
            connection.pauseReading()
        } else {
            finishResponse(on: connection, keepAlive: keepAlive)
        }
    }

    /// The response has gone: read the next request, or close.
    private func finishResponse(on connection: EventConnection, keepAlive: Bool) {
        if keepAlive && !shuttingDown {
            connection.resumeReading()
        } else {
            connection.close()
        }
    }

    /// Answers a head that cannot be served, then closes.
    private func fail(_ error: HTTPParseError, on connection: EventConnection, context: ServiceContext) {
        guard let status = error.status else {
            connection.close()
            return
        }
        fail(status, detail: error.detail, on: connection, context: context)
    }

    /// Answers with an error page, then closes.
    private func fail(_ status: HTTPStatus, detail: String, on connection: EventConnection, context: ServiceContext) {
        let response = StaticResponse.page(status, detail: detail)
        context.logger.info(
            "\"-\" \(status.code) 0", metadata: ["client": "\(connection.clientAddress)"])
        var output = response.head.serialized(keepAlive: false)
        if case .bytes(let body) = response.body { output += body }
        _ = connection.write(output)
        connection.close()
    }
}
