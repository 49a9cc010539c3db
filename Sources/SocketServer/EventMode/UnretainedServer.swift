/// The server as the event loops see it: a reference that never retains it.
///
/// Connections and queued loop tasks must not keep a dropped server alive, and a loop thread must never
/// hold the last reference (its release would run the server's `deinit`, which waits for the loops, on a
/// loop). Sound because the server outlives every loop callback: `serverClose()`, which `deinit` also
/// runs, closes every connection and stops the loops, running their accepted tasks, before it returns.
struct UnretainedServer: @unchecked Sendable {
    private let reference: Unmanaged<BaseServer>

    init(_ server: BaseServer) {
        reference = .passUnretained(server)
    }

    /// Calls `body` with the server without retaining or releasing it. Only on a loop of the server's mode.
    func with<Result>(_ body: (BaseServer) throws -> Result) rethrows -> Result {
        try reference._withUnsafeGuaranteedRef(body)
    }

    /// The server as an ordinary (retained) reference, for handler code that asks for it.
    var server: BaseServer { reference.takeUnretainedValue() }
}
