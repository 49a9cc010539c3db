import ArgumentParser
import Glibc

/// The `socketserver-demo` command: services built on SocketServer, for trying the library, for the perf
/// harness and for the integration tests.
///
/// Every service prints `listening on ADDRESS` as its first line on stdout once its socket accepts, shuts down
/// gracefully on SIGINT or SIGTERM (exit status 0), and exits with status 2 on bad arguments.
@main
struct SocketServerDemo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "socketserver-demo",
        abstract: "Demo services built on SocketServer: line echo, datagram echo and a static HTTP file server.",
        discussion: """
            The first line on stdout is `listening on ADDRESS` (127.0.0.1:PORT, [::1]:PORT or unix:PATH), \
            printed once the socket accepts. SIGINT or SIGTERM stops accepting, lets requests in flight \
            finish, and exits with status 0; a second signal exits at once with status 1. Bad arguments exit \
            with status 2.
            """,
        subcommands: [EchoCommand.self, UDPEchoCommand.self, HTTPCommand.self]
    )

    /// Parses and runs a subcommand. Unlike ArgumentParser's default (64, `EX_USAGE`), a usage error exits
    /// with status 2, the convention of POSIX utilities and Python's argparse that scripts expect.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            writeToStandardError(fullMessage(for: error) + "\n")
            Glibc.exit(2)
        }
    }
}
