import Logging
import SocketServer

/// The static file service for `--mode event`: a non-blocking handler per connection on the mode's loops.
///
/// A request is handled once its whole head has arrived (`HTTPHeadScanner` enforces the 414/431 limits while
/// it waits); bodies of up to 64 KiB are skipped, longer ones end keep-alive. A file is sent in 64 KiB
/// chunks while the connection takes them and resumed from `outputDrained`, so a slow reader holds at most
/// the mode's output watermark in memory; reading pauses meanwhile, so pipelined requests wait their turn.
/// The mode's idle timeout (`--timeout`) drops silent clients; on shutdown a connection closes after its
/// current response. Files are read on the loop thread (from the page cache, as servers without
/// asynchronous disk I/O do).
/// The service context comes in as `dependencies`.
final class EventHTTPHandler: DependentEventStreamHandler<ServiceContext> {
    private var context: ServiceContext?
    private var settings: HTTPSettings?
    private let parser = HTTPRequestParser()
    private var bodyBytesToSkip = 0
    private var upload: FileUpload?
    private var shuttingDown = false
    /// Whether any byte arrived: a connection that has sent nothing yet is about to send its first request,
    /// so a shutdown waits for it (up to the mode's `shutdownTimeout`) instead of closing it as idle.
    private var receivedAny = false

    /// A file being sent, and what to do after it.
    private struct FileUpload {
        let file: StaticFile
        var remaining: Int
        let keepAlive: Bool
    }

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
            if upload != nil {
                connection.pauseReading()
                return
            }
            switch HTTPHeadScanner.scan(input.readableBytes, parser: parser) {
            case .incomplete:
                if shuttingDown && input.isEmpty { connection.close() }
                return
            case .tooLarge(let error):
                fail(error, on: connection, context: context)
                return
            case .complete(let length):
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
        guard let context else { return }
        continueUpload(on: connection, context: context)
    }

    override func serverShuttingDown(_ connection: EventConnection) {
        shuttingDown = true
        if receivedAny && upload == nil && connection.bufferedInputCount == 0 { connection.close() }
    }

    override func connectionClosed(_ connection: EventConnection, error: (any Error)?) {
        upload = nil
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
        switch response.body {
        case .bytes(let body) where includeBody:
            output += body
            bodyBytes = body.count
        case .file(let file) where includeBody:
            upload = FileUpload(file: file, remaining: file.size, keepAlive: keepAlive)
            bodyBytes = file.size
        default:
            break
        }
        context.logger.info(
            "\"\(request.requestLine)\" \(response.head.status.code) \(bodyBytes)",
            metadata: ["client": "\(connection.clientAddress)"])
        _ = connection.write(output)
        if upload != nil {
            continueUpload(on: connection, context: context)
        } else if !keepAlive {
            connection.close()
        }
    }

    /// Sends file chunks while the connection takes them; ends the response when the file is sent.
    private func continueUpload(on connection: EventConnection, context: ServiceContext) {
        guard var current = upload else { return }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while current.remaining > 0 && connection.isWritable {
            let wanted = min(chunk.count, current.remaining)
            let count = chunk.withUnsafeMutableBytes {
                current.file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<wanted]))
            }
            guard count > 0 else {
                // The file shrank while being sent: the client must not take a short body for a whole one.
                upload = nil
                connection.close()
                return
            }
            _ = chunk.withUnsafeBytes { connection.write(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            current.remaining -= count
        }
        upload = current.remaining > 0 ? current : nil
        guard upload == nil else { return }
        if current.keepAlive && !shuttingDown {
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
        let response = StaticResponse.page(status, detail: error.detail)
        context.logger.info(
            "\"-\" \(status.code) 0", metadata: ["client": "\(connection.clientAddress)"])
        var output = response.head.serialized(keepAlive: false)
        if case .bytes(let body) = response.body { output += body }
        _ = connection.write(output)
        connection.close()
    }
}
