import Glibc

/// System calls on paths held as bytes (Linux file names need not be UTF-8, so they never go through
/// `String`).
enum FileSystemPath {
    /// The canonical path (`realpath(3)`: absolute, no `.`/`..`, no symbolic links); nil when it does not
    /// resolve (missing, a loop, too long, no permission).
    static func canonical(_ path: [UInt8]) -> [UInt8]? {
        withCString(path) { cPath in
            guard let resolved = realpath(cPath, nil) else { return nil }
            defer { free(resolved) }
            return Array(UnsafeRawBufferPointer(start: resolved, count: strlen(resolved)))
        }
    }

    /// `stat(2)` (following symbolic links), or nil.
    static func status(_ path: [UInt8]) -> stat? {
        withCString(path) { cPath in
            var info = stat()
            return stat(cPath, &info) == 0 ? info : nil
        }
    }

    /// Whether `path` itself is a symbolic link (`lstat(2)`).
    static func isSymbolicLink(_ path: [UInt8]) -> Bool {
        let isLink = withCString(path) { cPath -> Bool? in
            var info = stat()
            return lstat(cPath, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
        }
        return isLink ?? false
    }

    /// Whether `mode` is a directory's / a regular file's.
    static func isDirectory(_ mode: mode_t) -> Bool { (mode & S_IFMT) == S_IFDIR }
    static func isRegularFile(_ mode: mode_t) -> Bool { (mode & S_IFMT) == S_IFREG }

    /// `parent/name`, without doubling the slash after `/`.
    static func joining(_ parent: [UInt8], _ name: some Collection<UInt8>) -> [UInt8] {
        var joined = parent
        if joined.last != UInt8(ascii: "/") { joined.append(UInt8(ascii: "/")) }
        joined.append(contentsOf: name)
        return joined
    }

    /// Calls `body` with `path` as a NUL-terminated C string; nil for a path containing NUL.
    static func withCString<Result>(_ path: [UInt8], _ body: (UnsafePointer<CChar>) -> Result?) -> Result? {
        guard !path.contains(0) else { return nil }
        return (path + [0]).withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { characters in
                characters.baseAddress.flatMap(body)
            }
        }
    }
}
