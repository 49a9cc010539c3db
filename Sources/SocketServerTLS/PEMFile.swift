import Glibc

/// Reads a PEM (or password) file whole: at most 1 MiB, which no certificate chain or key comes near.
enum PEMFile {
    static let maxSize = 1 << 20

    /// The file's bytes.
    /// - Throws: `TLSError.invalidCertificate` naming the file and `errno`'s reason, or "too large".
    static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TLSError(.invalidCertificate, "\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw TLSError(.invalidCertificate, "\(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { return bytes }
            guard bytes.count <= maxSize - count else { throw TLSError(.invalidCertificate, "\(path): too large") }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }

    /// The first line of a password file, without its line end.
    static func readPassword(_ path: String) throws -> String {
        let bytes = try read(path)
        let line = bytes.prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }
        return String(decoding: line, as: UTF8.self)
    }
}
