import Glibc

/// The HTML page listing a directory, like `python3 -m http.server`'s.
///
/// Entries are sorted case-insensitively; a directory (or a link to one) gets a trailing `/`, a symbolic
/// link an `@`. Links are percent-encoded from the raw name bytes and the shown names are HTML-escaped, so
/// no file name can inject markup. Costs two `stat` calls per entry and the whole page in memory.
enum DirectoryListing {
    /// The page for the directory at canonical `path`, titled with the decoded `urlPath`; nil when the
    /// directory cannot be read, with `opendir`'s `errno` in `failure`.
    static func render(directory path: [UInt8], urlPath: [UInt8], failure: inout Int32) -> [UInt8]? {
        guard let names = entryNames(path, failure: &failure) else { return nil }
        let title = HTMLEscaping.escape("Directory listing for " + String(decoding: urlPath, as: UTF8.self))
        var page = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>\(title)</title>
            </head>
            <body>
            <h1>\(title)</h1>
            <hr>
            <ul>

            """
        for name in names {
            let fullPath = FileSystemPath.joining(path, name)
            var shown = String(decoding: name, as: UTF8.self)
            var link = PercentEncoding.encodeSegment(name)
            if let info = FileSystemPath.status(fullPath), FileSystemPath.isDirectory(info.st_mode) {
                shown += "/"
                link += "/"
            }
            if FileSystemPath.isSymbolicLink(fullPath) { shown += "@" }
            page += "<li><a href=\"\(HTMLEscaping.escape(link))\">\(HTMLEscaping.escape(shown))</a></li>\n"
        }
        page += "</ul>\n<hr>\n</body>\n</html>\n"
        return Array(page.utf8)
    }

    /// The names in a directory except `.` and `..`, sorted case-insensitively (ASCII), then bytewise.
    private static func entryNames(_ path: [UInt8], failure: inout Int32) -> [[UInt8]]? {
        var code: Int32 = 0
        let opened = FileSystemPath.withCString(path) { cPath -> OpaquePointer? in
            let directory = opendir(cPath)
            if directory == nil { code = errno }
            return directory
        }
        guard let directory = opened else {
            failure = code
            return nil
        }
        defer { closedir(directory) }
        var names: [[UInt8]] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 })
            }
            if name == Array(".".utf8) || name == Array("..".utf8) { continue }
            names.append(name)
        }
        let lowered: ([UInt8]) -> [UInt8] = { name in
            name.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 | 0x20 : $0 }
        }
        return names.sorted { left, right in
            let (a, b) = (lowered(left), lowered(right))
            return a == b ? left.lexicographicallyPrecedes(right) : a.lexicographicallyPrecedes(b)
        }
    }
}
