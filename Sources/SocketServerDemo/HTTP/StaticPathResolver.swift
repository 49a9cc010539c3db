import Glibc

/// Maps a request target to a file or directory inside the served directory, and nothing outside it.
///
/// The path is percent-decoded once (so `%2e%2e` and `%2f` are plain `..` and `/` afterwards), split on `/`,
/// and refused outright if any segment is `..`. What is left is joined to the root and canonicalised with
/// `realpath`, which also follows symbolic links; only a result equal to the root or below `root/` is
/// served. `StaticFile.open` checks the opened descriptor again, so a link swapped in after this check
/// still cannot lead out of the tree.
struct StaticPathResolver: Sendable {
    /// The served directory, canonical, without a trailing slash (except for `/` itself).
    let root: [UInt8]

    /// What a target resolves to.
    enum Resolution: Equatable {
        /// A regular file: its canonical path and the name that decides its content type.
        case file(path: [UInt8], name: [UInt8])
        /// A directory without an index file: its canonical path and the decoded URL path for the title.
        case directory(path: [UInt8], urlPath: [UInt8])
        /// A directory requested without its trailing slash: where to send the client.
        case redirect(location: String)
        /// A target this server cannot interpret.
        case badRequest(String)
        /// Missing, outside the tree, or not a regular file or directory.
        case notFound
    }

    /// The resolver for `directory`; nil when it is not an existing directory.
    init?(directory: String) {
        guard let canonical = FileSystemPath.canonical(Array(directory.utf8)),
            let info = FileSystemPath.status(canonical), FileSystemPath.isDirectory(info.st_mode)
        else { return nil }
        root = canonical
    }

    /// The root as text, for messages.
    var rootDescription: String { String(decoding: root, as: UTF8.self) }

    /// Whether the canonical `path` is the root or below it.
    func contains(_ path: [UInt8]) -> Bool {
        if path == root { return true }
        let prefix = root == [UInt8(ascii: "/")] ? root : root + [UInt8(ascii: "/")]
        return path.starts(with: prefix)
    }

    /// Resolves an origin-form (`/a/b?q`) or absolute-form (`http://host/a/b`) request target.
    func resolve(_ target: [UInt8]) -> Resolution {
        var rawPath = Self.stripScheme(target[...])
        var query: ArraySlice<UInt8> = []
        if let end = rawPath.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            if rawPath[end] == UInt8(ascii: "?") {
                query = rawPath[end...].prefix { $0 != UInt8(ascii: "#") }
            }
            rawPath = rawPath[..<end]
        }
        guard rawPath.first == UInt8(ascii: "/") else { return .badRequest("the request target is not a path") }
        guard let decoded = PercentEncoding.decode(rawPath) else { return .badRequest("malformed percent-encoding") }
        guard !decoded.contains(0) else { return .badRequest("NUL byte in the path") }

        var segments: [ArraySlice<UInt8>] = []
        for segment in decoded.split(separator: UInt8(ascii: "/")) {
            if segment.elementsEqual(".".utf8) { continue }
            if segment.elementsEqual("..".utf8) { return .notFound }
            segments.append(segment)
        }
        let candidate = segments.reduce(root) { FileSystemPath.joining($0, $1) }
        guard let canonical = FileSystemPath.canonical(candidate), contains(canonical),
            let info = FileSystemPath.status(canonical)
        else { return .notFound }
        let endsWithSlash = decoded.last == UInt8(ascii: "/")

        if FileSystemPath.isDirectory(info.st_mode) {
            guard endsWithSlash else {
                // One leading slash only: `//host/dir` would send the browser to another site (CPython
                // gh-87389).
                let path = [UInt8(ascii: "/")] + rawPath.drop { $0 == UInt8(ascii: "/") }
                return .redirect(location: String(decoding: path + [UInt8(ascii: "/")] + query, as: UTF8.self))
            }
            for index in ["index.html", "index.htm"] {
                let indexName = Array(index.utf8)
                if let indexPath = FileSystemPath.canonical(FileSystemPath.joining(canonical, indexName)),
                    contains(indexPath), let indexInfo = FileSystemPath.status(indexPath),
                    FileSystemPath.isRegularFile(indexInfo.st_mode)
                {
                    return .file(path: indexPath, name: indexName)
                }
            }
            return .directory(path: canonical, urlPath: decoded)
        }
        guard FileSystemPath.isRegularFile(info.st_mode), !endsWithSlash else { return .notFound }
        return .file(path: canonical, name: Array(segments.last ?? []))
    }

    /// Drops `http://authority` or `https://authority` from an absolute-form target.
    private static func stripScheme(_ target: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let lowered = target.prefix(8).map { $0 | 0x20 }
        for scheme in ["http://", "https://"] where lowered.starts(with: Array(scheme.utf8)) {
            let authorityStart = target.startIndex + scheme.utf8.count
            guard let slash = target[authorityStart...].firstIndex(of: UInt8(ascii: "/")) else { return [UInt8(ascii: "/")][...] }
            return target[slash...]
        }
        return target
    }
}
