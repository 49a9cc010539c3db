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

    /// One line for `--help`.
    var summary: String {
        switch self {
        case .sync: "one request at a time on the serving thread"
        case .threading: "a thread per request"
        case .forking: "a child process per request, at most 40 at once"
        case .pool: "--workers threads (default: one per CPU) fed from a bounded queue"
        }
    }

    /// Whether `--workers N` applies.
    var takesWorkers: Bool { self == .pool }

    /// Whether `--loops N` applies.
    var takesLoops: Bool { false }

    /// Whether an HTTP connection may stay open between requests. Not in `sync` mode, where an idle
    /// kept-alive connection would hold the only serving thread and starve every other client. (In `pool`
    /// and `forking` an idle connection holds a worker or a child slot, which the short keep-alive timeout
    /// bounds.)
    var allowsKeepAlive: Bool { self != .sync }

    /// A new mode object for one server (mode objects hold per-server state).
    func makeConcurrencyMode(workers: Int?) -> any ConcurrencyMode {
        switch self {
        case .sync: SynchronousMode()
        case .threading: ThreadingMode()
        case .forking: ForkingMode()
        case .pool: ThreadPoolMode(workers: workers ?? ThreadPoolMode.defaultWorkerCount)
        }
    }

    /// Requests that `mode` has taken and not finished: running on a thread or waiting in the pool's queue.
    /// Always 0 for `sync` (nothing runs once the serve loop has returned) and `forking` (children hold
    /// their own copies of every socket they need).
    static func requestsInFlight(_ mode: any ConcurrencyMode) -> Int {
        switch mode {
        case let threading as ThreadingMode: threading.activeRequests
        case let pool as ThreadPoolMode: pool.activeRequests + pool.queuedRequests
        default: 0
        }
    }

    /// The `--mode` help text, listing every mode.
    static var helpText: String {
        "Concurrency mode: " + allCases.map { "\($0.rawValue) (\($0.summary))" }.joined(separator: ", ") + "."
    }
}
