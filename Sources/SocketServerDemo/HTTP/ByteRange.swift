/// A single byte range of a `Range: bytes=...` request field (RFC 9110, section 14).
///
/// Only one range is served: a field with several ranges, another unit or bad syntax is ignored (the whole
/// file is sent with 200, which the RFC allows); a range that starts past the end is unsatisfiable (416).
enum ByteRange: Equatable {
    /// Serve `offset ..< offset + length` with 206.
    case satisfiable(offset: Int, length: Int)
    /// No byte of the file is in the range: 416 with `Content-Range: bytes */size`.
    case unsatisfiable
    /// Not a single byte range this server serves: ignore the field.
    case ignored

    /// The range `field` asks for in a file of `size` bytes.
    static func parse(_ field: String, size: Int) -> ByteRange {
        let trimmed = field[...].trimmingASCIISpaces()
        guard trimmed.lowercased().hasPrefix("bytes=") else { return .ignored }
        let spec = trimmed.dropFirst(6).trimmingASCIISpaces()
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .ignored }
        let first = spec[..<dash]
        let last = spec[spec.index(after: dash)...]
        func number(_ text: Substring) -> Int? {
            guard !text.isEmpty, text.count <= 18, text.utf8.allSatisfy({ (48...57).contains($0) }) else { return nil }
            return Int(text)
        }
        if first.isEmpty {
            // A suffix: the last N bytes.
            guard let suffix = number(last) else { return .ignored }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            let length = min(suffix, size)
            return .satisfiable(offset: size - length, length: length)
        }
        guard let start = number(first) else { return .ignored }
        let end: Int
        if last.isEmpty {
            end = size - 1
        } else {
            guard let value = number(last), value >= start else { return .ignored }
            end = min(value, size - 1)
        }
        guard start < size else { return .unsatisfiable }
        return .satisfiable(offset: start, length: end - start + 1)
    }
}
