import Glibc
import Logging
import SocketServer

/// `--processes N`: binds the listener (or takes the inherited one), runs N workers on it with
/// `WorkerGroup`, and drains them all on SIGTERM; on SIGUSR2 it re-executes itself, listeners inherited,
/// and stops its workers once the new master's workers all serve.
struct WorkerMaster {
    let options: ServiceOptions
    let setup: ProcessSetup
    let context: ServiceContext
    /// Makes listener-only servers: the master never serves.
    let factory: ServerFactory

    /// Runs the group until it is stopped. Prints `listening on ADDRESS` once every worker is ready.
    /// - Throws: what binding, adopting or starting the workers throws.
    func run(workers: Int, defaultPort: Int) throws {
        let logger = context.logger
        let holders = try listenerHolders(workers: workers, defaultPort: defaultPort)
        defer { for holder in holders { holder.serverClose() } }
        let listeners: WorkerGroup.Listeners =
            options.reusePort ? .perWorker(holders.map { [$0.socket] }) : .shared(holders.map(\.socket))
        let address = "\(holders[0].serverAddress)"
        let group = try WorkerGroup(
            listeners: listeners, configuration: .init(workers: workers), logger: logger, notifier: setup.notifier
        ) {
            print("listening on \(address)")
            fflush(nil)
        }
        try ShutdownSignals.watch(restart: {
            do {
                try ProcessRestart.reexecute(servers: holders, logger: logger)
                return true
            } catch {
                logger.error("restart failed; serving on", metadata: ["error": "\(error)"])
                return false
            }
        }) { signal in
            logger.notice("stopping the workers", metadata: ["signal": "\(ServiceRunner.signalName(signal))"])
            group.shutdown()
        }
        logger.notice(
            "starting workers",
            metadata: ["address": "\(holders[0].serverAddress)", "workers": "\(workers)"])
        try group.run()
        logger.notice("stopped")
    }

    /// The sockets the workers inherit, held by servers that never serve (they remove a Unix socket's file on
    /// close): the inherited ones, or one bound listener, or with `--reuse-port` one per worker on one port.
    private func listenerHolders(workers: Int, defaultPort: Int) throws -> [TCPServer] {
        if !setup.inherited.isEmpty {
            return try setup.inherited.map { try factory.adopting($0) }
        }
        let address = try options.address(defaultPort: defaultPort)
        guard options.reusePort else { return [try factory.binding(address)] }
        let first = try factory.binding(address, configuration: ServerConfiguration(allowReusePort: true))
        var holders = [first]
        for _ in 1..<workers {
            holders.append(try factory.binding(first.serverAddress, configuration: ServerConfiguration(allowReusePort: true)))
        }
        return holders
    }
}
