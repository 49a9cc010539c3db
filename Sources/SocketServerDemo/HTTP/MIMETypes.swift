/// Content types by file extension, for the `Content-Type` of served files.
enum MIMETypes {
    /// The type for a file name's extension (case-insensitive); `application/octet-stream` when unknown.
    static func type(forFileName name: [UInt8]) -> String {
        guard let dot = name.lastIndex(of: UInt8(ascii: ".")), dot > name.startIndex else { return fallback }
        let suffix = String(decoding: name[(dot + 1)...], as: UTF8.self).lowercased()
        return byExtension[suffix] ?? fallback
    }

    static let fallback = "application/octet-stream"

    private static let byExtension: [String: String] = [
        "html": "text/html", "htm": "text/html", "css": "text/css", "txt": "text/plain", "text": "text/plain",
        "md": "text/markdown", "csv": "text/csv", "xml": "text/xml", "js": "text/javascript",
        "mjs": "text/javascript", "json": "application/json", "wasm": "application/wasm",
        "pdf": "application/pdf", "zip": "application/zip", "gz": "application/gzip", "tar": "application/x-tar",
        "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp",
        "svg": "image/svg+xml", "ico": "image/vnd.microsoft.icon", "bmp": "image/bmp", "avif": "image/avif",
        "mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg", "mp4": "video/mp4", "webm": "video/webm",
        "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
        "swift": "text/plain", "c": "text/plain", "h": "text/plain", "py": "text/x-python", "sh": "text/x-sh",
    ]
}
