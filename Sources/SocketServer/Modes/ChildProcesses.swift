import CSocketServerShims
import Glibc

/// How a child process of a forking server ended, as reported to `ForkingMode`'s `onChildExit`.
public struct ChildExit: Sendable, Hashable, CustomStringConvertible {
    /// How a process can end.
    public enum Termination: Sendable, Hashable {
        /// It called `exit`/`_exit` with this status: 0 after a handled request, 1 after an error that went
        /// to `handleError`.
        case exited(Int32)
        /// A signal ended it (for example `SIGKILL`, or `SIGABRT` from a crash).
        case signalled(Int32)
    }

    /// The child's process id.
    public let pid: pid_t
    /// How it ended.
    public let termination: Termination

    /// Pairs a process id with how the process ended.
    public init(pid: pid_t, termination: Termination) {
        self.pid = pid
        self.termination = termination
    }

    /// Decodes a `waitpid` status word (the `WIFEXITED`/`WEXITSTATUS`/`WTERMSIG` macros, which Swift does
    /// not import).
    init(pid: pid_t, waitStatus status: Int32) {
        self.pid = pid
        let signal = status & 0x7f
        termination = signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// `"pid 123 exited 0"` or `"pid 123 killed by signal 9"`.
    public var description: String {
        switch termination {
        case .exited(let code): "pid \(pid) exited \(code)"
        case .signalled(let signal): "pid \(pid) killed by signal \(signal)"
        }
    }
}

/// A child that did not exit with status 0 is a failed request for a `ServerObserver`
/// (`requestFinished(duration:error:)` in the parent, at the reap), so `ChildExit` is also an `Error`.
extension ChildExit: Error {}

/// The process-level calls of the forking mode, kept in one audited place.
enum ChildProcess {
    /// What `wait(for:blocking:)` found.
    enum WaitOutcome {
        /// The child had ended and is now reaped.
        case reaped(ChildExit)
        /// It is still running (only without `blocking`).
        case running
        /// It is not our child any more: other code reaped it (`ECHILD`).
        case gone
        /// `waitpid` failed otherwise; try again later.
        case failed
    }

    /// Reaps one specific child; never waits for any other process, so children that other code in the
    /// process started keep their exit status for that code.
    static func wait(for pid: pid_t, blocking: Bool) -> WaitOutcome {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
            if result == pid { return .reaped(ChildExit(pid: pid, waitStatus: status)) }
            if result == 0 { return .running }
            if errno == EINTR { continue }
            return errno == ECHILD ? .gone : .failed
        }
    }

    /// Blocks until at least one of `pids` has exited (it is not reaped here), or returns at once when one
    /// already has. Waits on a pidfd per child with `poll`; where pidfds are missing or descriptors ran out
    /// (or a child is no longer ours), returns after 10 ms instead, for the caller to reap and ask again.
    static func waitForAnyExit(of pids: [pid_t]) {
        var descriptors: [pollfd] = []
        defer { for entry in descriptors { _ = close(entry.fd) } }
        for pid in pids {
            guard let fd = exitDescriptor(for: pid) else { break }
            descriptors.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
        }
        if descriptors.count == pids.count {
            while true {
                let ready = descriptors.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), -1) }
                if ready > 0 || errno != EINTR { return }
            }
        }
        // Fallback: the caller reaps what has exited and asks again, so wait a little and return.
        // usleep, not nanosleep: under MemberImportVisibility a release build saw `timespec`'s initializer as
        // CLibEventShim's (the C module that included <time.h> first) and refused it.
        _ = usleep(10_000)
    }

    /// A descriptor that becomes readable when `pid` exits (Linux 5.3+), or nil where pidfds are missing or
    /// descriptors ran out; the caller then falls back to reaping on the loop's periodic tick.
    ///
    /// Calls the system call itself (`syscall(SYS_pidfd_open)`, through the C shim), not glibc's 2.36
    /// wrapper, so the library links against older glibc; a kernel without it fails with `ENOSYS` → nil.
    static func exitDescriptor(for pid: pid_t) -> Int32? {
        let fd = CSocketServerShims_pidfd_open(pid, 0)
        return fd >= 0 ? fd : nil
    }
}

/// A child's exit, watched on the serving loop through its pidfd: no SIGCHLD handler (a process-wide
/// resource that libevent gives to one event base at a time and other code may own), no polling.
///
/// Created and freed on the loop's thread, or while the loop is not running. Keeps the loop alive so that
/// its event is always freed before the event base.
final class ChildExitWatch {
    private var event: LoopEvent?
    private let descriptor: Int32
    private let loop: EventLoop

    /// Starts watching; nil when no pidfd or event could be had.
    init?(pid: pid_t, loop: EventLoop, onExit: @escaping () -> Void) {
        guard let descriptor = ChildProcess.exitDescriptor(for: pid) else { return nil }
        let event = LoopEvent(loop: loop, descriptor: descriptor, flags: [.read]) { _ in onExit() }
        guard event.isValid else {
            _ = close(descriptor)
            return nil
        }
        self.descriptor = descriptor
        self.loop = loop
        self.event = event
        event.add()
    }

    deinit {
        event = nil
        _ = close(descriptor)
    }
}
