import ArgumentParser
import SocketServer

/// The `--mode` choices: one per concurrency mode the library has, and nothing else.
///
/// This is the one place that knows the library's modes; the services ask it for a mode object and for
/// what the mode allows (keep-alive, `--workers`, `--loops`).
enum ModeOption: String, CaseIterable, ExpressibleByArgument {
    /// One request at a time on the serving thread (`SynchronousMode`).
    case sync
    /// A thread per request (`ThreadingMode`).
    case threading
    /// A child process per request (`ForkingMode`).
    case forking
    /// A fixed set of worker threads fed from a bounded queue (`ThreadPoolMode`, `--workers N`).
    case pool
    /// Non-blocking handlers on `--loops N` libevent loops (`EventMode`); each service brings its own
    /// event handler.
    case event
    /// async/await handlers on `--loops N` libevent loops (`EventMode(configuration:makeAsyncHandler:)`);
    /// each stream service brings its own `AsyncStreamRequestHandler`.
    case async

    /// One line for `--help`.
    var summary: String {
        switch self {
        case .sync: "one request at a time on the serving thread"
        case .threading: "a thread per request"
        case .forking: "a child process per request, at most 40 at once"
        case .pool: "a fixed set of --workers threads, one per CPU by default"
        case .event: "non-blocking handlers on --loops event loops, one per CPU by default"
        case .async: "async/await handlers on --loops event loops"
        }
    }

    /// Whether `--workers N` applies.
    var takesWorkers: Bool { self == .pool }

    /// Whether `--loops N` applies.
    var takesLoops: Bool { self == .event || self == .async }

    /// Whether an HTTP connection may stay open between requests: in every mode. The blocking modes park an
    /// idle kept-alive connection on the server's loop (`StreamRequestHandler.parkConnection`), so it holds
    /// no thread, worker or child, and in `sync` mode no longer blocks every other client.
    var allowsKeepAlive: Bool { true }

    /// A new mode object for one server (mode objects hold per-server state).
    ///
    /// - Parameters:
    ///   - event: the service's non-blocking handling, required by `event` and ignored otherwise.
    ///   - async: the stream service's async/await handling, for `async`; ignored otherwise.
    ///   - asyncDatagram: the datagram service's async handler factory, for `async`; ignored otherwise.
    /// - Throws: `ValidationError` for `event` or `async` when the service has no handler for that mode.
    func makeConcurrencyMode(
        workers: Int?,
        loops: Int?,
        reuseThreads: Int? = nil,
        event: EventHandling?,
        async asyncHandling: AsyncHandling? = nil,
        asyncDatagram: (@Sendable (AsyncDatagramContext) throws -> AsyncDatagramRequestHandler)? = nil
    ) throws -> any ConcurrencyMode {
        switch self {
        case .sync: return SynchronousMode()
        case .threading: return ThreadingMode(reuseThreads: reuseThreads ?? 0)
        case .forking: return ForkingMode()
        case .pool: return ThreadPoolMode(workers: workers ?? ThreadPoolMode.defaultWorkerCount)
        case .event:
            switch event {
            case .stream(var configuration, let makeHandler):
                if let loops { configuration.loops = loops }
                return EventMode(configuration: configuration, makeHandler: makeHandler)
            case .datagram(let makeHandler):
                return EventMode(datagramHandler: makeHandler())
            case nil:
                throw ValidationError("this service has no event-mode handler; use another --mode.")
            }
        case .async:
            if let asyncDatagram {
                var configuration = EventMode.Configuration()
                if let loops { configuration.loops = loops }
                return EventMode(configuration: configuration, makeAsyncDatagramHandler: asyncDatagram)
            }
            guard var handling = asyncHandling else {
                throw ValidationError("this service has no async handler; use another --mode.")
            }
            if let loops { handling.configuration.loops = loops }
            return EventMode(configuration: handling.configuration, makeAsyncHandler: handling.makeHandler)
        }
    }

    /// What a service runs in `event` mode.
    enum EventHandling {
        /// A handler per connection, made by the factory, with the mode's limits.
        case stream(EventMode.Configuration, @Sendable (EventHandlerContext) -> EventStreamHandler)
        /// One handler for every datagram, made by the factory.
        case datagram(() -> EventDatagramHandler)
    }

    /// What a stream service runs in `async` mode: a handler per connection, made by the factory on the
    /// connection's loop, with the mode's limits (idle timeout, input and output bounds, shutdown timeout).
    struct AsyncHandling {
        var configuration: EventMode.Configuration
        let makeHandler: @Sendable (AsyncHandlerContext) throws -> AsyncStreamRequestHandler
    }

    /// The `--mode` help text, listing every mode.
    static var helpText: String {
        "Concurrency mode: " + allCases.map { "\($0.rawValue) (\($0.summary))" }.joined(separator: ", ") + "."
    }
}
