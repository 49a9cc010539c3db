import Glibc

/// An IPv4, IPv6 or Unix socket address, held in a `sockaddr_storage` (no heap allocation).
///
/// Python's `server_address` and `client_address` are tuples or paths; this is the one Swift type for both.
/// Its `description` is `127.0.0.1:8080`, `[::1]:8080`, `unix:/path`, `unix:@name` for a Linux abstract
/// name, or `unix:` alone for an unnamed client.
///
/// An address made by `loopback(port:)` or `loopbackIPv6(port:)` with a port outside 0...65535 does not
/// trap: it keeps the port it was given (`port`, `description` show it), `validate()` throws for it, and
/// every system call given it (`bind`, `connect`, `sendto`) fails with `EINVAL`, since it hands the kernel
/// a zero `length`.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    private var storage: sockaddr_storage
    /// The number of meaningful bytes in the underlying `sockaddr`; 0 for `unspecified` and for an address
    /// with an out-of-range port.
    public private(set) var length: socklen_t
    /// The port a loopback address was asked for when it is outside 0...65535; nil for every usable address.
    private var invalidPort: Int?

    /// An address with no family, for requests that do not come from a socket (a custom `getRequest()`).
    public static let unspecified = SocketAddress(storage: sockaddr_storage(), length: 0)

    init(storage: sockaddr_storage, length: socklen_t) {
        self.storage = storage
        self.length = length
        self.invalidPort = nil
    }

    /// Parses a numeric IPv4 or IPv6 address (`"127.0.0.1"`, `"::1"`, `"[::1]"`, `"fe80::1%lo"`) and a port.
    ///
    /// Names such as `"localhost"` are resolved with `getaddrinfo`, preferring IPv4 (a blocking lookup; numeric
    /// addresses never touch the resolver). An empty host means every IPv4 interface, like Python's `""`.
    /// - Throws: `SocketServerError.invalidAddress` for a port outside 0...65535 or an unknown host.
    public init(host: String, port: Int) throws {
        guard let validPort = UInt16(exactly: port) else { throw SocketServerError.invalidAddress("\(host):\(port)") }
        var name = host
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if name.isEmpty { name = "0.0.0.0" }
        if let address = Self.numeric(name, port: validPort) {
            self = address
            return
        }
        guard let resolved = Self.resolve(name, port: port) else {
            throw SocketServerError.invalidAddress("\(host):\(port)")
        }
        self = resolved
    }

    /// A Unix socket path, or a Linux abstract name when `path` starts with NUL (`"\0name"`).
    ///
    /// A path takes at most 107 bytes and may not contain NUL; it is bound with its terminating NUL. An
    /// abstract name takes at most 108 bytes, its leading NUL included, lives in no file system, and is
    /// bound exactly as given, with no terminator, so that other programs reach it by the same name
    /// (`socat ABSTRACT-CONNECT:name`, `ss` shows `@name`).
    /// - Throws: `SocketServerError.pathTooLong` when the path does not fit;
    ///   `SocketServerError.invalidAddress` for an empty path or a path (not an abstract name) containing NUL.
    public init(unixPath path: String) throws {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let bytes = Array(path.utf8)
        guard let first = bytes.first else { throw SocketServerError.invalidAddress("empty Unix socket path") }
        let isAbstract = first == 0
        if isAbstract {
            guard bytes.count <= capacity else { throw SocketServerError.pathTooLong(path) }
        } else {
            guard bytes.count < capacity else { throw SocketServerError.pathTooLong(path) }
            guard !bytes.contains(0) else {
                throw SocketServerError.invalidAddress("Unix socket path contains NUL: \(path.debugDescription)")
            }
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            withUnsafeBytes(of: address) { raw.copyMemory(from: $0) }
        }
        // At most 2 + 108 bytes: the sums below cannot overflow, nor exceed `socklen_t`.
        let length = Self.unixPathOffset + bytes.count + (isAbstract ? 0 : 1)
        self.init(storage: storage, length: socklen_t(length))
    }

    /// The IPv4 loopback address `127.0.0.1` with `port` (0: let the system pick). O(1), no allocation.
    ///
    /// Never traps: a port outside 0...65535 gives an address that keeps that port, for which `validate()`
    /// throws `SocketServerError.invalidAddress` and `bind`, `connect` and `sendto` fail with `EINVAL`.
    /// `SocketAddress(host:port:)` throws at once instead.
    public static func loopback(port: Int = 0) -> SocketAddress {
        loopback("127.0.0.1", port: port)
    }

    /// The IPv6 loopback address `::1` with `port` (0: let the system pick). O(1), no allocation.
    ///
    /// Never traps: an out-of-range port behaves as described for `loopback(port:)`.
    public static func loopbackIPv6(port: Int = 0) -> SocketAddress {
        loopback("::1", port: port)
    }

    private static func loopback(_ host: String, port: Int) -> SocketAddress {
        guard let valid = UInt16(exactly: port) else {
            // Keep the family and host, with port 0 in the bytes and nothing the kernel will accept.
            var address = numeric(host, port: 0) ?? .unspecified
            address.length = 0
            address.invalidPort = port
            return address
        }
        return numeric(host, port: valid) ?? .unspecified
    }

    /// Checks that the address can be used: from `loopback(port:)` or `loopbackIPv6(port:)` with a port
    /// outside 0...65535, it cannot. O(1); call it before binding or connecting for a clear error instead
    /// of the system call's `EINVAL`.
    /// - Throws: `SocketServerError.invalidAddress` naming the address and the range.
    public func validate() throws {
        if let invalidPort {
            throw SocketServerError.invalidAddress("\(hostAndPort(invalidPort)): port outside 0...65535")
        }
    }

    /// The address family: IPv4, IPv6, Unix or unspecified.
    public var family: AddressFamily {
        length == 0 && invalidPort == nil ? .unspecified : AddressFamily(rawValue: Int32(storage.ss_family))
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

    /// The port of an IP address (after binding port 0, the real one); nil for other families. For an
    /// address made with an out-of-range port, that port.
    public var port: Int? {
        if let invalidPort { return invalidPort }
        return switch family {
        case .inet: withSockAddr(as: sockaddr_in.self) { Int(UInt16(bigEndian: $0.sin_port)) }
        case .inet6: withSockAddr(as: sockaddr_in6.self) { Int(UInt16(bigEndian: $0.sin6_port)) }
        default: nil
        }
    }

    /// The path of a Unix address: empty for an unnamed (unbound) client; for a Linux abstract name, the
    /// name with its leading NUL (`"\0name"`, as given to `init(unixPath:)`); nil for other families.
    /// Bytes that are not UTF-8 become U+FFFD.
    public var path: String? {
        guard family == .unix else { return nil }
        return withUnixPathBytes { bytes in
            guard let first = bytes.first else { return "" }
            if first == 0 { return String(decoding: bytes, as: UTF8.self) }
            let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
            return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
        }
    }

    /// Whether this is a Linux abstract Unix name (its path starts with NUL), which has no file to remove.
    var isAbstractUnixName: Bool {
        family == .unix && withUnixPathBytes { $0.first == 0 }
    }

    /// `127.0.0.1:8080`, `[::1]:8080`, `unix:/path`, `unix:@name` for an abstract name (every NUL shown as
    /// `@`, as `ss` does), `unix:` for an unnamed Unix peer, or `unspecified`. An out-of-range port is
    /// followed by ` (invalid port)`.
    public var description: String {
        if let invalidPort { return "\(hostAndPort(invalidPort)) (invalid port)" }
        return switch family {
        case .inet, .inet6: hostAndPort(port ?? 0)
        case .unix: "unix:\(isAbstractUnixName ? (path ?? "").replacingNUL(with: "@") : path ?? "")"
        case .unspecified: "unspecified"
        }
    }

    private func hostAndPort(_ port: Int) -> String {
        family == .inet6 ? "[\(host ?? "?")]:\(port)" : "\(host ?? "?"):\(port)"
    }

    /// Where `sun_path` starts in a `sockaddr_un` (2 on Linux).
    static let unixPathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path) ?? 2

    /// Calls `body` with the meaningful bytes of `sun_path` (none for an unnamed address).
    private func withUnixPathBytes<Result>(_ body: (Slice<UnsafeRawBufferPointer>) -> Result) -> Result {
        withUnsafeBytes(of: storage) { raw in
            let end = min(max(Int(length), Self.unixPathOffset), raw.count)
            return body(raw[Self.unixPathOffset..<end])
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

    private static func numeric(_ host: String, port: UInt16) -> SocketAddress? {
        var storage = sockaddr_storage()
        var ipv4 = sockaddr_in()
        if inet_pton(AF_INET, host, &ipv4.sin_addr) == 1 {
            ipv4.sin_family = sa_family_t(AF_INET)
            ipv4.sin_port = port.bigEndian
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
        ipv6.sin6_port = port.bigEndian
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

    /// Two addresses are equal when their meaningful `sockaddr` bytes are (and, for addresses made with an
    /// out-of-range port, their family and port); O(length), no allocation.
    public static func == (lhs: SocketAddress, rhs: SocketAddress) -> Bool {
        guard lhs.length == rhs.length, lhs.invalidPort == rhs.invalidPort else { return false }
        if lhs.invalidPort != nil { return lhs.storage.ss_family == rhs.storage.ss_family }
        return withUnsafeBytes(of: lhs.storage) { left in
            withUnsafeBytes(of: rhs.storage) { right in
                left[..<Int(lhs.length)].elementsEqual(right[..<Int(rhs.length)])
            }
        }
    }

    /// Hashes the meaningful `sockaddr` bytes (and an out-of-range port).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(invalidPort)
        withUnsafeBytes(of: storage) { raw in
            hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: raw[..<Int(length)]))
        }
    }
}

extension String {
    /// The string with every NUL replaced by `marker`.
    fileprivate func replacingNUL(with marker: Character) -> String {
        String(map { $0 == "\0" ? marker : $0 })
    }
}
