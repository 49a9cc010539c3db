import Glibc

extension SocketAddress {
    /// An IPv4 address from its 4 bytes in network order, and a port.
    init(ipv4 bytes: UnsafeRawBufferPointer, port: UInt16) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        withUnsafeMutableBytes(of: &address.sin_addr) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.prefix(4))) }
        self.init(copying: address)
    }

    /// An IPv6 address from its 16 bytes in network order, and a port.
    init(ipv6 bytes: UnsafeRawBufferPointer, port: UInt16) {
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.prefix(16))) }
        self.init(copying: address)
    }

    /// A Unix address from a 108-byte `sun_path` field as the PROXY protocol v2 sends it: a path up to its first
    /// NUL, an abstract name (leading NUL; up to the last non-NUL byte), or, all NUL, an unnamed socket.
    init(unixPathBytes bytes: UnsafeRawBufferPointer) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let field = bytes.prefix(capacity)
        let used: Int
        if field.first == 0 {
            // Abstract (or unnamed): trailing NULs are padding.
            used = (field.lastIndex(where: { $0 != 0 }).map { $0 - field.startIndex + 1 }) ?? 0
        } else {
            // A path ends at its first NUL; one that fills the field has none.
            used = (field.firstIndex(of: 0).map { $0 - field.startIndex }) ?? field.count
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: field.prefix(used)))
        }
        let isAbstract = field.first == 0 && used > 0
        let length = Self.unixPathOffset + used + (isAbstract || used == 0 || used == capacity ? 0 : 1)
        self.init(copying: address, length: length)
    }

    /// Copies a `sockaddr_*` into the storage; `length` defaults to the structure's size.
    private init<Address>(copying address: Address, length: Int? = nil) {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            withUnsafeBytes(of: address) { raw.copyMemory(from: $0) }
        }
        self.init(storage: storage, length: socklen_t(length ?? MemoryLayout<Address>.size))
    }
}
