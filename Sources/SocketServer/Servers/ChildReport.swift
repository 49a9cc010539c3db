import CSocketServerShims

/// What a forked child of a `ForkingMode` stream server tells its parent through its channel (a pipe) as it
/// exits: whether its handler parked the connection (and with which idle timeout), and the bytes its
/// `RequestReader` and `RequestWriter` counted on the connection, so that the parent's `ServerObserver` sees
/// them. 32 bytes, little-endian: a magic number with the format's version, the idle timeout in milliseconds
/// (`UInt64.max`: not parked), bytes received, bytes sent. Written once with one `write(2)`, far below
/// `PIPE_BUF`, so the parent reads all of it or nothing.
struct ChildReport: Equatable {
    static let magic: UInt64 = 0x5041_524B_4544_0002  // "PARKED" + version 2
    static let size = 32
    private static let notParked = UInt64.max

    /// The idle timeout the handler parked the connection with; nil when it did not park it.
    var parkTimeout: Duration?
    /// Bytes received and sent on the connection, as counted on its socket in the child.
    var bytesReceived: Int
    var bytesSent: Int

    /// Writes the report to `descriptor` with one `write(2)`, packed in C (`CSocketServerShims_write_report`):
    /// a forked child runs this as it exits, so it allocates nothing and builds no array (what stays in Swift is
    /// arithmetic on `Int` and `Duration`). Returns whether all 32 bytes were written.
    func write(to descriptor: Int32) -> Bool {
        var milliseconds = Self.notParked
        if let parkTimeout {
            let (seconds, attoseconds) = parkTimeout.components
            let scaled = seconds.multipliedReportingOverflow(by: 1000)
            let total = scaled.overflow ? Int64.max - 1 : scaled.partialValue &+ attoseconds / 1_000_000_000_000_000
            milliseconds = UInt64(max(min(total, Int64.max - 1), 0))
        }
        let written = CSocketServerShims_write_report(
            descriptor, Self.magic, milliseconds, UInt64(max(bytesReceived, 0)), UInt64(max(bytesSent, 0)))
        return written == Self.size
    }

    /// Decodes `bytes`; nil unless they are exactly one report of this version.
    init?(decoding bytes: [UInt8]) {
        guard bytes.count == Self.size else { return nil }
        var fields = [UInt64](repeating: 0, count: 4)
        for field in 0..<4 {
            for index in 0..<8 { fields[field] |= UInt64(bytes[field * 8 + index]) << (8 * UInt64(index)) }
        }
        guard fields[0] == Self.magic else { return nil }
        parkTimeout = fields[1] == Self.notParked ? nil : .milliseconds(Int64(clamping: fields[1]))
        bytesReceived = Int(clamping: fields[2])
        bytesSent = Int(clamping: fields[3])
    }

    init(parkTimeout: Duration?, bytesReceived: Int, bytesSent: Int) {
        self.parkTimeout = parkTimeout
        self.bytesReceived = bytesReceived
        self.bytesSent = bytesSent
    }
}
