import Glibc

/// The fuzzer's bytes read as a small program: numbers from the front, then the payload.
///
/// Reads past the end give zeros, so every input is a valid program and libFuzzer's mutations of the
/// header bytes change parameters rather than make inputs useless.
public struct FuzzInput {
    private let bytes: [UInt8]
    private var position = 0

    public init(_ data: UnsafePointer<UInt8>?, count: Int) {
        bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    }

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The bytes not read yet.
    public var remainingCount: Int { bytes.count - position }

    /// The next byte, or 0 past the end.
    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// The next two bytes as a little-endian number, 0 ... 65535.
    public mutating func uint16() -> Int {
        let low = Int(byte())
        return low | Int(byte()) << 8
    }

    /// The next `count` bytes (fewer at the end).
    public mutating func take(_ count: Int) -> [UInt8] {
        let end = min(position + max(count, 0), bytes.count)
        defer { position = end }
        return Array(bytes[position..<end])
    }

    /// Everything not read yet.
    public mutating func rest() -> [UInt8] {
        take(remainingCount)
    }
}

/// Stops the fuzzer with a crash (and the input saved) when an invariant does not hold.
public func fuzzRequire(
    _ condition: @autoclosure () -> Bool,
    _ message: @autoclosure () -> String,
    file: StaticString = #fileID,
    line: UInt = #line
) {
    guard !condition() else { return }
    fuzzFail(message(), file: file, line: line)
}

/// Reports a broken invariant on stderr and aborts, which libFuzzer records as a crash with its input.
public func fuzzFail(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    let text = "fuzz invariant failed at \(file):\(line): \(message)\n"
    _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    abort()
}

/// Bytes shown as an escaped string, for failure messages.
public func describe(_ bytes: some Collection<UInt8>, limit: Int = 200) -> String {
    var text = "\""
    for byte in bytes.prefix(limit) {
        switch byte {
        case 0x0A: text += "\\n"
        case 0x0D: text += "\\r"
        case 0x22: text += "\\\""
        case 0x5C: text += "\\\\"
        case 0x20...0x7E: text.unicodeScalars.append(UnicodeScalar(byte))
        default:
            let hex = Array("0123456789abcdef")
            text += "\\x" + String(hex[Int(byte >> 4)]) + String(hex[Int(byte & 0xF)])
        }
    }
    if bytes.count > limit { text += "…(\(bytes.count) bytes)" }
    return text + "\""
}
