import Glibc
import Testing

/// The whole of a file that `stat` may report as empty (a /proc file), read with `read(2)`; nil when it
/// cannot be opened.
private func readProcFile(_ path: String) -> String? {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    defer { _ = close(descriptor) }
    var contents: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count > 0 {
            contents.append(contentsOf: chunk[..<count])
        } else if count == 0 || errno != EINTR {
            break
        }
    }
    return String(decoding: contents, as: UTF8.self)
}

@Suite("Linkage")
struct LinkageTests {
    /// The full libevent contains libevent_core; linking both maps two copies of the event loop code, and
    /// each symbol resolves to whichever loaded first.
    @Test func exactlyOneLibeventIsMapped() throws {
        let maps = try #require(readProcFile("/proc/self/maps"))
        let libraries = Set(
            maps.split(separator: "\n").compactMap { line -> String? in
                guard let path = line.split(separator: " ", omittingEmptySubsequences: true).last,
                    path.hasPrefix("/")
                else { return nil }
                let name = String(path.split(separator: "/").last ?? "")
                return name.hasPrefix("libevent-2.1.") || name.hasPrefix("libevent_core-2.1.") ? name : nil
            }
        )
        #expect(libraries.count == 1, "libevent libraries mapped: \(libraries.sorted())")
    }
}
