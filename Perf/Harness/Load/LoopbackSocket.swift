import Glibc

/// An IPv4 endpoint parsed from "HOST:PORT" (the harness serves on 127.0.0.1 only).
struct IPv4Endpoint: Sendable {
    var address: sockaddr_in

    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            return nil
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        let parsed = String(text[..<colon]).withCString { inet_pton(AF_INET, $0, &address.sin_addr) }
        guard parsed == 1 else { return nil }
        self.address = address
    }

    /// Calls `connect` (or anything taking a sockaddr) with this endpoint.
    func withSocketAddress<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        withUnsafePointer(to: address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
}

/// Small socket calls used by the load engines. Every descriptor is close-on-exec.
enum LoopbackSocket {
    /// A new TCP socket, non-blocking when asked, with TCP_NODELAY (echo ping-pong must not wait for Nagle).
    static func tcp(nonBlocking: Bool) -> Int32 {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
            | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd = socket(AF_INET, type, 0)
        if fd >= 0 { setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1) }
        return fd
    }

    /// A UDP socket connected to `endpoint`, non-blocking; -1 on failure.
    static func connectedUDP(to endpoint: IPv4Endpoint) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return -1 }
        guard endpoint.withSocketAddress({ connect(fd, $0, $1) }) == 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    /// Connects a blocking TCP socket (2 s timeout), then makes it non-blocking; -1 on failure.
    static func connectedTCP(to endpoint: IPv4Endpoint) -> Int32 {
        let fd = tcp(nonBlocking: false)
        guard fd >= 0 else { return -1 }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard endpoint.withSocketAddress({ connect(fd, $0, $1) }) == 0 else {
            close(fd)
            return -1
        }
        makeNonBlocking(fd)
        return fd
    }

    static func makeNonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
        var value = value
        setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed); 0 on failure.
    static func freePort() -> Int {
        let fd = tcp(nonBlocking: false)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        return bound ? Int(UInt16(bigEndian: address.sin_port)) : 0
    }

    /// The pending error of a socket whose non-blocking connect finished (0 = connected).
    static func pendingError(_ fd: Int32) -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        return error
    }
}

/// A 64-byte request line: 63 printable bytes and a newline, as every echo server echoes it unchanged.
let requestLine: [UInt8] = Array(repeating: UInt8(ascii: "x"), count: 63) + [UInt8(ascii: "\n")]
