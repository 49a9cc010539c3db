import Glibc
import SocketServer
import Synchronization

/// The news that the service is shutting down, visible to every handler thread and every forked child.
///
/// Handlers check it while they wait for a client and, once it is set, finish what they have and close
/// instead of waiting for more. An atomic flag answers threads of this process; a forked child holds a copy
/// of the flag taken at `fork`, so the news also goes into a pipe that every child inherits and nobody reads:
/// once a byte is in it, a zero-timeout `poll` says readable in every process. Costs one pipe per process.
final class DrainNotice: Sendable {
    private let flag = Atomic<Bool>(false)
    private let readEnd: Int32
    private let writeEnd: Int32

    /// Creates the flag and its pipe.
    /// - Throws: `SocketError` when the process is out of descriptors.
    init() throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw SocketError(operation: "pipe", code: errno) }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    /// Announces the shutdown. Safe from any thread; later calls do nothing.
    func begin() {
        guard !flag.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    /// Whether the shutdown was announced, in this process or (for a forked child) in its parent.
    var isDraining: Bool {
        if flag.load(ordering: .acquiring) { return true }
        var entry = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0
    }
}
