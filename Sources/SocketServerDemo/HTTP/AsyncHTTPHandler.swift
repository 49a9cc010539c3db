import Logging
import SocketServer

/// The static file service for `--mode async`: an async/await handler per connection, in a task on the
/// connection's loop.
///
/// Each request head is read line by line with the parser's limits applied while it arrives (414 for a
/// request line over 8 KiB, 431 for a header line over 8 KiB, more than 64 KiB or 100 fields of headers),
/// then parsed by `HTTPRequestParser`; a malformed request line gets 400 as soon as it is complete; bodies
/// of up to 64 KiB are skipped, longer ones end keep-alive. A file is sent with `wfile.sendFile`
/// (`sendfile(2)`, no copy through user space), which suspends while the peer is slow; pipelined requests
/// wait in the input buffer meanwhile. The mode's idle timeout (`--timeout`) answers a client that stopped
/// in the middle of a head with 408 (the read throws `EventModeError.idleTimeout` with the connection still
/// open) and closes a silent one. A head must also be complete within `--timeout` of its first line: a
/// slowloris that keeps the idle timer alive with a header line now and then gets 408 at the first line past
/// that deadline (a single line that trickles in byte by byte is bounded by the line-length limits and the
/// idle timeout only). On shutdown a connection closes after its current response; one idle at
/// that moment is closed by the mode's shutdown deadline.
/// The service context comes in as `dependencies`.
final class AsyncHTTPHandler: DependentAsyncStreamRequestHandler<ServiceContext> {
    private let parser = HTTPRequestParser()

    /// The idle timeout fired in the middle of a request head, or the head took longer than `--timeout`.
    private struct RequestHeadTimeout: Error {}

    /// The mode's limits for this service: `--timeout` as the idle timeout, room for a maximal head.
    static func configuration(_ context: ServiceContext) -> EventMode.Configuration {
        EventMode.Configuration(idleTimeout: context.timeout, maxBufferedInput: 96 * 1024)
    }

    override func handle() async throws {
        let context = dependencies
        guard let settings = context.http else {
            throw SocketServerError.unexpectedRequest("AsyncHTTPHandler needs HTTP settings")
        }
        do {
            while true {
                let request: HTTPRequest
                do {
                    guard let parsed = try await readRequest() else { return }
                    request = parsed
                } catch let error as HTTPParseError {
                    guard let status = error.status else { return }
                    log(context, "-", status: status, bytes: 0)
                    try await send(.page(status, detail: error.detail), keepAlive: false, includeBody: true)
                    return
                } catch is RequestHeadTimeout {
                    log(context, "-", status: .requestTimeout, bytes: 0)
                    try await send(
                        .page(.requestTimeout, detail: "The request did not arrive in time."), keepAlive: false,
                        includeBody: true)
                    return
                }
                guard try await serve(request, context: context, settings: settings) else { return }
                // As in event mode: on shutdown, close after the current response.
                if context.drain.isDraining { return }
            }
        } catch let error as SocketError where error.isDisconnect {
            context.logger.debug("connection lost", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
        } catch let error as EventModeError {
            context.logger.debug("connection closed", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
        } catch is AsyncConnectionClosed {
        } catch is CancellationError {
        } catch is FileRegionError {
            context.logger.debug("file shrank while being sent", metadata: ["client": "\(clientAddress)"])
        }
    }

    /// Reads the next request head, applying the parser's limits while it arrives.
    /// - Returns: the request, or nil when the client closed between requests.
    /// - Throws: `HTTPParseError` for a head that cannot be served; the connection's failures otherwise.
    private func readRequest() async throws -> HTTPRequest? {
        let limit = dependencies.timeout
        var started: ContinuousClock.Instant?
        var head: [UInt8] = []
        var sawRequestLine = false
        var leadingEmptyLines = 0
        var headerBytes = 0
        var headerCount = 0
        while true {
            let line: [UInt8]
            do {
                line = try await rfile.readLine(
                    maxLength: sawRequestLine ? parser.maxHeaderLineLength : parser.maxRequestLineLength)
            } catch EventModeError.idleTimeout {
                // Idle for --timeout: in the middle of a head, 408; between requests, a quiet close.
                if sawRequestLine || leadingEmptyLines > 0 || rfile.bufferedCount > 0 { throw RequestHeadTimeout() }
                throw EventModeError.idleTimeout
            } catch SocketServerError.lineTooLong {
                throw sawRequestLine
                    ? HTTPParseError.headerFieldsTooLarge(
                        "a header line is longer than \(parser.maxHeaderLineLength) bytes")
                    : HTTPParseError.uriTooLong(limit: parser.maxRequestLineLength)
            }
            if line.isEmpty {
                if sawRequestLine { throw HTTPParseError.incomplete }
                return nil
            }
            guard line.last == UInt8(ascii: "\n") else { throw HTTPParseError.incomplete }
            // The whole head within --timeout of its first line, as in the other modes.
            let now = ContinuousClock.now
            if let started {
                if started.duration(to: now) > limit { throw RequestHeadTimeout() }
            } else {
                started = now
            }
            head += line
            let isEmptyLine = line.count == 1 || (line.count == 2 && line[0] == UInt8(ascii: "\r"))
            if !sawRequestLine {
                if isEmptyLine {
                    // The parser skips a few empty lines before the request line, then answers 400.
                    leadingEmptyLines += 1
                    if leadingEmptyLines >= 4 { break }
                    continue
                }
                sawRequestLine = true
                // A malformed request line is answered at once, without waiting for the header fields.
                var requestLine = line
                requestLine.removeLast()
                if requestLine.last == UInt8(ascii: "\r") { requestLine.removeLast() }
                _ = try HTTPRequestParser.parseRequestLine(requestLine)
                continue
            }
            if isEmptyLine { break }
            headerBytes += line.count
            headerCount += 1
            if headerBytes > parser.maxHeaderBytes {
                throw HTTPParseError.headerFieldsTooLarge("more than \(parser.maxHeaderBytes) bytes of header fields")
            }
            if headerCount > parser.maxHeaderCount {
                throw HTTPParseError.headerFieldsTooLarge("more than \(parser.maxHeaderCount) header fields")
            }
        }
        return try HTTPHeadScanner.parse(head, parser: parser)
    }

    /// Answers one request; returns whether the connection stays open for the next one.
    private func serve(_ request: HTTPRequest, context: ServiceContext, settings: HTTPSettings) async throws -> Bool {
        var keepAlive = settings.allowsKeepAlive && request.wantsKeepAlive && !context.drain.isDraining
        var response: StaticResponse
        do {
            switch try request.bodyFraming() {
            case .none:
                break
            case .length(let length) where length <= settings.maxDiscardedBody:
                // GET and HEAD bodies mean nothing here; reading them keeps the connection in step.
                _ = try await rfile.read(length)
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
        let bytes = try await send(response, keepAlive: keepAlive, includeBody: request.method != "HEAD")
        log(context, request.requestLine, status: response.head.status, bytes: bytes)
        return keepAlive
    }

    /// Sends the head and, unless `includeBody` is false, the body; returns the body bytes sent.
    @discardableResult
    private func send(_ response: StaticResponse, keepAlive: Bool, includeBody: Bool) async throws -> Int {
        var output = response.head.serialized(keepAlive: keepAlive)
        guard includeBody else {
            try await wfile.write(output)
            return 0
        }
        switch response.body {
        case .bytes(let body):
            output += body
            try await wfile.write(output)
            return body.count
        case .file(let file, let offset, let length):
            // sendfile(2) after the head, resumed as the peer reads; a file that shrank meanwhile fails the
            // connection.
            try await wfile.sendFile(file.region(offset: offset, count: length), after: output)
            return length
        }
    }

    private func log(_ context: ServiceContext, _ requestLine: String, status: HTTPStatus, bytes: Int) {
        context.logger.info(
            "\"\(requestLine)\" \(status.code) \(bytes)", metadata: ["client": "\(clientAddress)"])
    }
}
