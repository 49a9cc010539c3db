import Glibc

/// An address or network a server accepts PROXY headers from: an IPv4 or IPv6 network in CIDR form, or
/// every Unix-socket peer.
///
/// ```swift
/// let trusted = try [TrustedProxy("127.0.0.1"), TrustedProxy("10.0.0.0/8"), TrustedProxy("fd00::/8")]
/// ```
/// An IPv4 network also matches IPv4-mapped IPv6 peers (`::ffff:10.1.2.3`) of a dual-stack listener.
public struct TrustedProxy: Sendable, Hashable, CustomStringConvertible {
    private enum Network: Hashable {
        case ipv4(UInt32, prefix: Int)
        case ipv6(high: UInt64, low: UInt64, prefix: Int)
        case unix
    }

    private let network: Network

    /// Every peer of a Unix stream listener (a proxy on the same host; Unix peers have no network address).
    public static let unixPeers = TrustedProxy(network: .unix)
    /// `127.0.0.0/8` and `::1`: a proxy on this host.
    public static let loopback: [TrustedProxy] = [
        TrustedProxy(network: .ipv4(0x7F00_0000, prefix: 8)), TrustedProxy(network: .ipv6(high: 0, low: 1, prefix: 128)),
    ]

    private init(network: Network) {
        self.network = network
    }

    /// Parses `"ADDRESS"` (one host), `"ADDRESS/PREFIX"` (a network) or `"unix"` (`unixPeers`).
    /// - Throws: `SocketServerError.invalidAddress` for anything else, or a prefix beyond the family's length.
    public init(_ text: String) throws {
        if text == "unix" {
            self = .unixPeers
            return
        }
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let host = String(parts[0])
        var prefix: Int?
        if parts.count == 2 {
            guard let value = Int(parts[1]), value >= 0 else { throw SocketServerError.invalidAddress(text) }
            prefix = value
        }
        var ipv4 = in_addr()
        var ipv6 = in6_addr()
        if inet_pton(AF_INET, host, &ipv4) == 1 {
            let length = prefix ?? 32
            guard length <= 32 else { throw SocketServerError.invalidAddress(text) }
            self.init(network: .ipv4(Self.masked(UInt32(bigEndian: ipv4.s_addr), prefix: length), prefix: length))
        } else if inet_pton(AF_INET6, host, &ipv6) == 1 {
            let length = prefix ?? 128
            guard length <= 128 else { throw SocketServerError.invalidAddress(text) }
            let (high, low) = Self.words(ipv6)
            let masked = Self.masked(high: high, low: low, prefix: length)
            self.init(network: .ipv6(high: masked.high, low: masked.low, prefix: length))
        } else {
            throw SocketServerError.invalidAddress(text)
        }
    }

    /// Whether `peer` is inside this network. O(1), no allocation.
    public func contains(_ peer: SocketAddress) -> Bool {
        switch (network, peer.family) {
        case (.unix, .unix):
            return true
        case (.ipv4(let base, let prefix), .inet):
            let value = peer.withSockAddr { pointer, _ in
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            }
            return Self.masked(value, prefix: prefix) == base
        case (.ipv4(let base, let prefix), .inet6):
            let (high, low) = Self.words(of: peer)
            // ::ffff:a.b.c.d
            guard high == 0, low >> 32 == 0xFFFF else { return false }
            return Self.masked(UInt32(truncatingIfNeeded: low), prefix: prefix) == base
        case (.ipv6(let baseHigh, let baseLow, let prefix), .inet6):
            let (high, low) = Self.words(of: peer)
            let masked = Self.masked(high: high, low: low, prefix: prefix)
            return masked.high == baseHigh && masked.low == baseLow
        default:
            return false
        }
    }

    /// `10.0.0.0/8`, `::1/128`, `unix`.
    public var description: String {
        switch network {
        case .unix:
            return "unix"
        case .ipv4(let base, let prefix):
            return "\(base >> 24).\(base >> 16 & 0xFF).\(base >> 8 & 0xFF).\(base & 0xFF)/\(prefix)"
        case .ipv6(let high, let low, let prefix):
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) { raw in
                raw.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            _ = inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
            let host = String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return "\(host)/\(prefix)"
        }
    }

    private static func masked(_ value: UInt32, prefix: Int) -> UInt32 {
        prefix == 0 ? 0 : value & ~UInt32(0) << (32 - prefix)
    }

    private static func masked(high: UInt64, low: UInt64, prefix: Int) -> (high: UInt64, low: UInt64) {
        switch prefix {
        case 0: (0, 0)
        case 1..<64: (high & ~UInt64(0) << (64 - prefix), 0)
        case 64: (high, 0)
        case 65..<128: (high, low & ~UInt64(0) << (128 - prefix))
        default: (high, low)
        }
    }

    private static func words(_ address: in6_addr) -> (high: UInt64, low: UInt64) {
        withUnsafeBytes(of: address) { raw in
            (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
             UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }

    private static func words(of peer: SocketAddress) -> (high: UInt64, low: UInt64) {
        peer.withSockAddr { pointer, _ in
            pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { words($0.pointee.sin6_addr) }
        }
    }
}
