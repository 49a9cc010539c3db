import Glibc

/// A regular file opened for one response; the descriptor closes with the object.
///
/// `open` refuses anything but a regular file (a FIFO would block the handler) and re-checks where the opened
/// descriptor really points (`/proc/self/fd`), so a path that was swapped for a link after resolution cannot
/// serve a file outside the tree.
final class StaticFile {
    /// The open descriptor.
    let descriptor: Int32
    /// The size when opened: the `Content-Length`.
    let size: Int
    /// The modification time, seconds since the epoch: the `Last-Modified`.
    let modified: time_t

    private init(descriptor: Int32, size: Int, modified: time_t) {
        self.descriptor = descriptor
        self.size = size
        self.modified = modified
    }

    deinit {
        close(descriptor)
    }

    /// Opens `path` read-only if it is a regular file whose real location is inside `resolver`'s root.
    static func open(_ path: [UInt8], within resolver: StaticPathResolver) -> StaticFile? {
        let flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK
        guard let fd = FileSystemPath.withCString(path, { Glibc.open($0, flags) }), fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, FileSystemPath.isRegularFile(info.st_mode),
            let location = openedLocation(fd), resolver.contains(location)
        else {
            close(fd)
            return nil
        }
        return StaticFile(descriptor: fd, size: Int(info.st_size), modified: info.st_mtim.tv_sec)
    }

    /// Reads up to `buffer.count` bytes at the current offset; 0 at end of file, -1 on error.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            if count >= 0 || errno != EINTR { return count }
        }
    }

    private static func openedLocation(_ fd: Int32) -> [UInt8]? {
        var target = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = target.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { characters in
                guard let base = characters.baseAddress else { return -1 }
                return readlink("/proc/self/fd/\(fd)", base, characters.count - 1)
            }
        }
        guard length > 0 else { return nil }
        return Array(target[..<length])
    }
}
