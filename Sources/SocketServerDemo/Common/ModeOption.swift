import ArgumentParser
import SocketServer

/// The `--mode` choices: one per concurrency mode the library has, and nothing else.
///
/// This is the one place that knows the library's modes; the services ask it for a mode object and for
/// what the mode allows (keep-alive, `--workers`, `--loops`).
enum ModeOption: String, CaseIterable, ExpressibleByArgument {
    /// One request at a time on the serving thread (`SynchronousMode`).
    case sync

    /// One line for `--help`.
    var summary: String {
        switch self {
        case .sync: "one request at a time on the serving thread"
        }
    }

    /// Whether `--workers N` applies.
    var takesWorkers: Bool { false }

    /// Whether `--loops N` applies.
    var takesLoops: Bool { false }

    /// Whether an HTTP connection may stay open between requests. Not in `sync` mode, where an idle
    /// kept-alive connection would hold the only serving thread and starve every other client.
    var allowsKeepAlive: Bool {
        switch self {
        case .sync: false
        }
    }

    /// A new mode object for one server (mode objects hold per-server state).
    func makeConcurrencyMode(workers: Int?) -> any ConcurrencyMode {
        switch self {
        case .sync: SynchronousMode()
        }
    }

    /// The `--mode` help text, listing every mode.
    static var helpText: String {
        "Concurrency mode: " + allCases.map { "\($0.rawValue) (\($0.summary))" }.joined(separator: ", ") + "."
    }
}
