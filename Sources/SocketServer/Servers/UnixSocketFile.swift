import Glibc

/// The file a bound Unix socket leaves in the file system, and the rules for removing it.
///
/// A Unix server owns one: it removes a stale file before binding, claims the path once bound, and removes
/// its own file on close or, as a backstop, when the server goes away.
final class UnixSocketFile: @unchecked Sendable {
    private var claimed: SocketAddress?

    deinit { remove() }

    /// Remembers the path a server has just bound, for `remove()`.
    func claim(_ address: SocketAddress) {
        claimed = address
    }

    /// Forgets the claimed path without removing its file (another process serves that socket now).
    func release() {
        claimed = nil
    }

    /// Removes the claimed socket file, once.
    func remove() {
        Self.removeOwn(at: claimed)
        claimed = nil
    }

    /// Removes `address`'s path if a stale socket file is there (nothing accepts on it any more); leaves a
    /// live socket and any other kind of file alone, so that binding fails with `EADDRINUSE` instead of
    /// stealing another server's path or deleting user data.
    /// A Linux abstract name has no file: nothing is removed for it (its path starts with NUL, which a C
    /// string would cut to the empty path).
    static func removeStale(at address: SocketAddress, type: SocketType) {
        guard !address.isAbstractUnixName, let path = address.path, !path.isEmpty, isSocket(path),
            !isLive(address, type: type)
        else { return }
        _ = unlink(path)
    }

    /// Removes the socket file the server itself bound, if it is still a socket; nothing for an abstract name.
    static func removeOwn(at address: SocketAddress?) {
        guard let address, !address.isAbstractUnixName, let path = address.path, !path.isEmpty, isSocket(path)
        else { return }
        _ = unlink(path)
    }

    private static func isSocket(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFSOCK
    }

    /// A socket file whose owner is gone refuses connections; a live one accepts them.
    private static func isLive(_ address: SocketAddress, type: SocketType) -> Bool {
        guard let probe = try? Socket(family: .unix, type: type) else { return true }
        defer { probe.close() }
        do {
            try probe.connect(to: address)
            return true
        } catch let error as SocketError {
            return error.code != ECONNREFUSED && error.code != ENOENT
        } catch {
            return true
        }
    }
}
