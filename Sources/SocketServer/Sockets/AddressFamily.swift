import Glibc

/// The address family of a socket: Python's `socket.AF_INET`, `AF_INET6` and `AF_UNIX`.
public enum AddressFamily: Sendable, Hashable, CustomStringConvertible {
    /// IPv4 (`AF_INET`).
    case inet
    /// IPv6 (`AF_INET6`).
    case inet6
    /// Unix domain sockets (`AF_UNIX`).
    case unix
    /// No family: an address a custom `getRequest()` made up, or an unknown one.
    case unspecified

    /// The `AF_*` constant.
    public var rawValue: Int32 {
        switch self {
        case .inet: AF_INET
        case .inet6: AF_INET6
        case .unix: AF_UNIX
        case .unspecified: AF_UNSPEC
        }
    }

    init(rawValue: Int32) {
        switch rawValue {
        case AF_INET: self = .inet
        case AF_INET6: self = .inet6
        case AF_UNIX: self = .unix
        default: self = .unspecified
        }
    }

    /// Whether this is IPv4 or IPv6 (where `SO_REUSEPORT` and `TCP_NODELAY` apply).
    public var isIP: Bool { self == .inet || self == .inet6 }

    /// `"AF_INET"`, `"AF_INET6"`, `"AF_UNIX"` or `"AF_UNSPEC"`.
    public var description: String {
        switch self {
        case .inet: "AF_INET"
        case .inet6: "AF_INET6"
        case .unix: "AF_UNIX"
        case .unspecified: "AF_UNSPEC"
        }
    }
}

/// The socket type: Python's `socket.SOCK_STREAM` and `SOCK_DGRAM`.
public enum SocketType: Sendable, Hashable {
    /// A connection-oriented byte stream (TCP, Unix stream).
    case stream
    /// Datagrams (UDP, Unix datagram).
    case datagram

    var rawValue: Int32 {
        switch self {
        case .stream: Int32(SOCK_STREAM.rawValue)
        case .datagram: Int32(SOCK_DGRAM.rawValue)
        }
    }
}
