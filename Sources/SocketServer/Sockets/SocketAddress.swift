import Glibc

/// An IPv4, IPv6 or Unix socket address, held in a `sockaddr_storage` (no heap allocation).
///
/// Python's `server_address` and `client_address` are tuples or paths; this is the one Swift type for both.
/// Its `description` is `127.0.0.1:8080`, `[::1]:8080` or `unix:/path` (`unix:` alone for an unnamed client).
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    private var storage: sockaddr_storage
    /// The number of meaningful bytes in the underlying `sockaddr`.
    public private(set) var length: socklen_t

    /// An address with no family, for requests that do not come from a socket (a custom `getRequest()`).
    public static let unspecified = SocketAddress(storage: sockaddr_storage(), length: 0)

    init(storage: sockaddr_storage, length: socklen_t) {
        self.storage = storage
        self.length = length
    }

    /// Parses a numeric IPv4 or IPv6 address (`"127.0.0.1"`, `"::1"`, `"[::1]"`, `"fe80::1%lo"`) and a port.
    ///
    /// Names such as `"localhost"` are resolved with `getaddrinfo`, preferring IPv4 (a blocking lookup; numeric
    /// addresses never touch the resolver). An empty host means every IPv4 interface, like Python's `""`.
    /// - Throws: `SocketServerError.invalidAddress` for a port outside 0...65535 or an unknown host.
    public init(host: String, port: Int) throws {
        guard (0...65535).contains(port) else { throw SocketServerError.invalidAddress("\(host):\(port)") }
        var name = host
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if name.isEmpty { name = "0.0.0.0" }
        if let address = Self.numeric(name, port: port) {
            self = address
            return
        }
        guard let resolved = Self.resolve(name, port: port) else {
            throw SocketServerError.invalidAddress("\(host):\(port)")
        }
        self = resolved
    }

    /// A Unix socket path. Linux allows at most 107 bytes.
    /// - Throws: `SocketServerError.pathTooLong` when the path does not fit.
    public init(unixPath path: String) throws {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let bytes = Array(path.utf8)
        guard bytes.count < capacity, !bytes.isEmpty else { throw SocketServerError.pathTooLong(path) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            withUnsafeBytes(of: address) { raw.copyMemory(from: $0) }
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path) ?? 2
        self.init(storage: storage, length: socklen_t(pathOffset + bytes.count + 1))
    }

    /// The IPv4 loopback address `127.0.0.1` with `port` (0: let the system pick).
    public static func loopback(port: Int = 0) -> SocketAddress {
        numeric("127.0.0.1", port: port) ?? .unspecified
    }

    /// The IPv6 loopback address `::1` with `port` (0: let the system pick).
    public static func loopbackIPv6(port: Int = 0) -> SocketAddress {
        numeric("::1", port: port) ?? .unspecified
    }

    /// The address family: IPv4, IPv6, Unix or unspecified.
    public var family: AddressFamily {
        length == 0 ? .unspecified : AddressFamily(rawValue: Int32(storage.ss_family))
    }

    /// The numeric host (`"127.0.0.1"`, `"::1"`) of an IP address; nil for other families.
    public var host: String? {
        switch family {
        case .inet:
            return withSockAddr(as: sockaddr_in.self) { address in
                var raw = address.sin_addr
                return Self.presentation(AF_INET, &raw, Int(INET_ADDRSTRLEN))
            }
        case .inet6:
            return withSockAddr(as: sockaddr_in6.self) { address in
                var raw = address.sin6_addr
                return Self.presentation(AF_INET6, &raw, Int(INET6_ADDRSTRLEN))
            }
        default:
            return nil
        }
    }

    /// The port of an IP address (after binding port 0, the real one); nil for other families.
    public var port: Int? {
        switch family {
        case .inet: withSockAddr(as: sockaddr_in.self) { Int(UInt16(bigEndian: $0.sin_port)) }
        case .inet6: withSockAddr(as: sockaddr_in6.self) { Int(UInt16(bigEndian: $0.sin6_port)) }
        default: nil
        }
    }

    /// The path of a Unix address: empty for an unnamed (unbound) client; nil for other families.
    public var path: String? {
        guard family == .unix else { return nil }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path) ?? 2
        let count = Int(length) - pathOffset
        guard count > 0 else { return "" }
        return withUnsafeBytes(of: storage) { raw in
            let bytes = raw[pathOffset..<(pathOffset + count)]
            let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
            return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
        }
    }

    /// `127.0.0.1:8080`, `[::1]:8080`, `unix:/path`, `unix:` for an unnamed Unix peer, or `unspecified`.
    public var description: String {
        switch family {
        case .inet: "\(host ?? "?"):\(port ?? 0)"
        case .inet6: "[\(host ?? "?")]:\(port ?? 0)"
        case .unix: "unix:\(path ?? "")"
        case .unspecified: "unspecified"
        }
    }

    /// Calls `body` with the address as a `sockaddr` pointer and its length, for system calls.
    public func withSockAddr<Result>(
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Result
    ) rethrows -> Result {
        // The buffer of a 128-byte struct always has a base address: the unwraps below cannot fail.
        try withUnsafeBytes(of: storage) { raw in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    /// Fills an address in place from a system call such as `accept` or `recvfrom`.
    static func receive(_ body: (UnsafeMutablePointer<sockaddr>, inout socklen_t) throws -> Void) rethrows -> Self {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        try withUnsafeMutableBytes(of: &storage) { raw in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        return SocketAddress(storage: storage, length: min(length, socklen_t(MemoryLayout<sockaddr_storage>.size)))
    }

    private func withSockAddr<Address, Result>(as type: Address.Type, _ body: (Address) -> Result) -> Result {
        withUnsafeBytes(of: storage) { raw in body(raw.load(as: Address.self)) }
    }

    private static func presentation(_ family: Int32, _ raw: UnsafeRawPointer, _ capacity: Int) -> String? {
        var buffer = [CChar](repeating: 0, count: capacity)
        guard inet_ntop(family, raw, &buffer, socklen_t(capacity)) != nil else { return nil }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func numeric(_ host: String, port: Int) -> SocketAddress? {
        var storage = sockaddr_storage()
        var ipv4 = sockaddr_in()
        if inet_pton(AF_INET, host, &ipv4.sin_addr) == 1 {
            ipv4.sin_family = sa_family_t(AF_INET)
            ipv4.sin_port = UInt16(port).bigEndian
            withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: ipv4) { raw.copyMemory(from: $0) } }
            return SocketAddress(storage: storage, length: socklen_t(MemoryLayout<sockaddr_in>.size))
        }
        var ipv6 = sockaddr_in6()
        var name = host
        var scope: UInt32 = 0
        if let percent = host.firstIndex(of: "%") {
            name = String(host[..<percent])
            let zone = String(host[host.index(after: percent)...])
            scope = UInt32(zone) ?? if_nametoindex(zone)
        }
        guard inet_pton(AF_INET6, name, &ipv6.sin6_addr) == 1 else { return nil }
        ipv6.sin6_family = sa_family_t(AF_INET6)
        ipv6.sin6_port = UInt16(port).bigEndian
        ipv6.sin6_scope_id = scope
        withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: ipv6) { raw.copyMemory(from: $0) } }
        return SocketAddress(storage: storage, length: socklen_t(MemoryLayout<sockaddr_in6>.size))
    }

    private static func resolve(_ host: String, port: Int) -> SocketAddress? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &results) == 0, let first = results else { return nil }
        defer { freeaddrinfo(first) }
        var chosen: UnsafeMutablePointer<addrinfo>? = first
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if entry.pointee.ai_family == AF_INET {
                chosen = entry
                break
            }
            cursor = entry.pointee.ai_next
        }
        guard let entry = chosen, let address = entry.pointee.ai_addr else { return nil }
        var storage = sockaddr_storage()
        let length = Int(entry.pointee.ai_addrlen)
        withUnsafeMutableBytes(of: &storage) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(start: address, count: length))
        }
        return SocketAddress(storage: storage, length: socklen_t(length))
    }

    /// Two addresses are equal when their meaningful `sockaddr` bytes are; O(length), no allocation.
    public static func == (lhs: SocketAddress, rhs: SocketAddress) -> Bool {
        guard lhs.length == rhs.length else { return false }
        return withUnsafeBytes(of: lhs.storage) { left in
            withUnsafeBytes(of: rhs.storage) { right in
                left[..<Int(lhs.length)].elementsEqual(right[..<Int(rhs.length)])
            }
        }
    }

    /// Hashes the meaningful `sockaddr` bytes.
    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes(of: storage) { raw in
            hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: raw[..<Int(length)]))
        }
    }
}
