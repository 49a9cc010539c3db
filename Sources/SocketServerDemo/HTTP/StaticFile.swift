import Glibc
import SocketServer

/// A regular file opened for one response; the descriptor closes with the object (after the last
/// `FileRegion` of it has been sent: regions retain it as their owner).
///
/// `open` refuses anything but a regular file (a FIFO would block the handler) and re-checks where the opened
/// descriptor really points (`/proc/self/fd`), so a path that was swapped for a link after resolution cannot
/// serve a file outside the tree. It tells a missing file from a server out of descriptors or memory.
final class StaticFile: Sendable {
    /// The open descriptor.
    let descriptor: Int32
    /// The size when opened: the `Content-Length`.
    let size: Int
    /// The modification time, seconds since the epoch: the `Last-Modified`.
    let modified: time_t
    /// The modification time's nanoseconds, for the entity tag.
    let modifiedNanoseconds: Int

    /// What `open` found.
    enum Opening {
        case opened(StaticFile)
        /// Missing, not a regular file, or outside the tree: 404.
        case notFound
        /// The server could not open it for lack of descriptors or memory (`EMFILE`, `ENFILE`, `ENOMEM`):
        /// 503, try again later.
        case unavailable(errno: Int32)
    }

    private init(descriptor: Int32, info: stat) {
        self.descriptor = descriptor
        self.size = Int(info.st_size)
        self.modified = info.st_mtim.tv_sec
        self.modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
    }

    deinit {
        close(descriptor)
    }

    /// Whether a failed `open`/`opendir`/`readlink` says the server is out of resources, not the file.
    static func isResourceExhaustion(_ code: Int32) -> Bool {
        code == EMFILE || code == ENFILE || code == ENOMEM || code == ENOBUFS
    }

    /// Opens `path` read-only if it is a regular file whose real location is inside `resolver`'s root.
    static func open(_ path: [UInt8], within resolver: StaticPathResolver) -> Opening {
        let flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK
        // errno is read inside the closure, before anything else can change it.
        guard let (fd, code) = FileSystemPath.withCString(path, { cPath -> (Int32, Int32) in
            let fd = Glibc.open(cPath, flags)
            return (fd, fd < 0 ? errno : 0)
        }) else { return .notFound }
        guard fd >= 0 else { return isResourceExhaustion(code) ? .unavailable(errno: code) : .notFound }
        var info = stat()
        guard fstat(fd, &info) == 0, FileSystemPath.isRegularFile(info.st_mode) else {
            close(fd)
            return .notFound
        }
        guard let location = openedLocation(fd) else {
            let code = errno
            close(fd)
            return isResourceExhaustion(code) ? .unavailable(errno: code) : .notFound
        }
        guard resolver.contains(location) else {
            close(fd)
            return .notFound
        }
        return .opened(StaticFile(descriptor: fd, info: info))
    }

    /// The entity tag: size and modification time in hex, as nginx makes it (strong: the bytes change
    /// with either).
    var entityTag: String {
        "\"\(String(modified, radix: 16))-\(String(modifiedNanoseconds, radix: 16))-\(String(size, radix: 16))\""
    }

    /// `count` bytes from `offset`, for `sendFile`; the region keeps this file open.
    func region(offset: Int, count: Int) -> FileRegion {
        FileRegion(descriptor: descriptor, offset: offset, count: count, owner: self)
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
