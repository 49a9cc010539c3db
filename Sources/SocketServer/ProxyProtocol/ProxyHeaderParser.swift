import Glibc

/// Parses a PROXY protocol v1 or v2 header from the first bytes of a connection: a pure function, no I/O,
/// no state, bounded (v1 ≤ 107 bytes, v2 ≤ `maxLength`), so that it can be fuzzed alone.
///
/// `parse` looks at the bytes received so far. `.incomplete` promises that every byte it was given belongs
/// to the header (a reader may consume them all and wait for more); `.complete(header, length:)` says the
/// header is the first `length` bytes, and what follows them is the client's, never to be consumed.
enum ProxyHeaderParser {
    /// What the bytes so far amount to.
    enum Outcome: Sendable, Hashable {
        /// A valid beginning: more bytes are needed. `totalLength` is the header's whole length once known
        /// (v2 after its 16-byte preamble); nil while unknown (v1 until its line ends).
        case incomplete(totalLength: Int?)
        /// The header, made of the first `length` bytes.
        case complete(ProxyHeader, length: Int)
    }

    /// The longest v1 header, `\r\n` included.
    static let v1MaxLength = 107
    /// The v2 preamble: signature, version and command, family and transport, length.
    static let v2PreambleLength = 16
    /// The longest v2 header the format allows.
    static let v2MaxLength = 16 + 65535
    /// The shortest header of either version (`PROXY UNKNOWN\r\n`): reading this many never reads past one.
    static let minimumLength = 15

    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Signature: [UInt8] = Array("PROXY ".utf8)

    /// Parses `bytes`, the first bytes of a connection.
    /// - Parameters:
    ///   - accepting: the versions this listener takes.
    ///   - maxLength: the longest v2 header allowed, 16 ... 16 + 65535.
    /// - Throws: `ProxyProtocolError.missingHeader`, `.versionNotAccepted`, `.malformedHeader`,
    ///   `.headerTooLong`, as soon as the bytes so far prove it.
    static func parse(
        _ bytes: UnsafeRawBufferPointer,
        accepting: ProxyProtocolConfiguration.Versions,
        maxLength: Int = v2MaxLength
    ) throws(ProxyProtocolError) -> Outcome {
        if bytes.isEmpty { return .incomplete(totalLength: nil) }
        if startsLikePrefix(bytes, of: v2Signature) {
            guard accepting != .v1 else { throw .versionNotAccepted(.v2) }
            return try parseV2(bytes, maxLength: min(max(maxLength, v2PreambleLength), v2MaxLength))
        }
        if startsLikePrefix(bytes, of: v1Signature) {
            guard accepting != .v2 else { throw .versionNotAccepted(.v1) }
            return try parseV1(bytes)
        }
        throw .missingHeader
    }

    /// Whether `bytes` and `signature` agree on their common length (an empty input agrees with anything).
    private static func startsLikePrefix(_ bytes: UnsafeRawBufferPointer, of signature: [UInt8]) -> Bool {
        let count = min(bytes.count, signature.count)
        for index in 0..<count where bytes[index] != signature[index] { return false }
        return true
    }

    // MARK: - Version 1

    private static func parseV1(_ bytes: UnsafeRawBufferPointer) throws(ProxyProtocolError) -> Outcome {
        let searched = min(bytes.count, v1MaxLength)
        guard let newline = (0..<searched).first(where: { bytes[$0] == UInt8(ascii: "\n") }) else {
            if bytes.count >= v1MaxLength { throw .headerTooLong(limit: v1MaxLength) }
            // A CR may only come right before the LF.
            if let carriageReturn = (0..<searched).first(where: { bytes[$0] == UInt8(ascii: "\r") }),
                carriageReturn != searched - 1
            {
                throw .malformedHeader("v1 line with a CR before its end")
            }
            return .incomplete(totalLength: nil)
        }
        guard newline >= 1, bytes[newline - 1] == UInt8(ascii: "\r") else {
            throw .malformedHeader("v1 line not ended by CRLF")
        }
        let line = UnsafeRawBufferPointer(rebasing: bytes[v1Signature.count..<(newline - 1)])
        // Even where the rest is ignored (UNKNOWN), a CR may only end the line.
        guard !line.contains(UInt8(ascii: "\r")) else { throw .malformedHeader("v1 line with a CR before its end") }
        let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard let protocolName = fields.first else { throw .malformedHeader("v1 line without a protocol") }
        let length = newline + 1
        switch String(decoding: protocolName, as: UTF8.self) {
        case "UNKNOWN":
            // The rest of the line, whatever it is, is to be ignored.
            return .complete(ProxyHeader(version: .v1, command: .proxy), length: length)
        case "TCP4":
            return .complete(try v1Addresses(fields, family: AF_INET), length: length)
        case "TCP6":
            return .complete(try v1Addresses(fields, family: AF_INET6), length: length)
        default:
            throw .malformedHeader("v1 protocol is not TCP4, TCP6 or UNKNOWN")
        }
    }

    private static func v1Addresses(
        _ fields: [Slice<UnsafeRawBufferPointer>], family: Int32
    ) throws(ProxyProtocolError) -> ProxyHeader {
        guard fields.count == 5 else { throw .malformedHeader("v1 line needs 5 fields after PROXY, has \(fields.count)") }
        guard let sourcePort = v1Port(fields[3]), let destinationPort = v1Port(fields[4]) else {
            throw .malformedHeader("v1 port is not a number in 0...65535")
        }
        guard let source = v1Address(fields[1], family: family, port: sourcePort),
            let destination = v1Address(fields[2], family: family, port: destinationPort)
        else {
            throw .malformedHeader(family == AF_INET ? "v1 TCP4 address is not IPv4" : "v1 TCP6 address is not IPv6")
        }
        return ProxyHeader(version: .v1, command: .proxy, source: source, destination: destination)
    }

    /// A decimal port without sign or leading zero.
    private static func v1Port(_ field: Slice<UnsafeRawBufferPointer>) -> UInt16? {
        guard (1...5).contains(field.count), field.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        if field.count > 1, field.first == 0x30 { return nil }
        var value = 0
        for digit in field { value = value * 10 + Int(digit - 0x30) }
        return UInt16(exactly: value)
    }

    /// A numeric address of `family`: only hex digits, dots and colons reach `inet_pton`.
    private static func v1Address(_ field: Slice<UnsafeRawBufferPointer>, family: Int32, port: UInt16) -> SocketAddress? {
        guard (1...45).contains(field.count) else { return nil }
        let allowed = field.allSatisfy { byte in
            switch byte {
            case 0x30...0x39, UInt8(ascii: "."): true
            case UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"), UInt8(ascii: ":"):
                family == AF_INET6
            default: false
            }
        }
        guard allowed else { return nil }
        var text = [CChar](repeating: 0, count: field.count + 1)
        for (index, byte) in field.enumerated() { text[index] = CChar(bitPattern: byte) }
        if family == AF_INET {
            var address = in_addr()
            guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
            return withUnsafeBytes(of: &address) { SocketAddress(ipv4: $0, port: port) }
        }
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { SocketAddress(ipv6: $0, port: port) }
    }

    // MARK: - Version 2

    private static func parseV2(_ bytes: UnsafeRawBufferPointer, maxLength: Int) throws(ProxyProtocolError) -> Outcome {
        guard bytes.count >= v2PreambleLength else {
            if bytes.count > 12 { try checkV2VersionAndFamily(bytes) }
            return .incomplete(totalLength: nil)
        }
        try checkV2VersionAndFamily(bytes)
        let payloadLength = Int(bytes[14]) << 8 | Int(bytes[15])
        let length = v2PreambleLength + payloadLength
        guard length <= maxLength else { throw .headerTooLong(limit: maxLength) }
        guard bytes.count >= length else { return .incomplete(totalLength: length) }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[v2PreambleLength..<length])
        let isLocal = bytes[12] & 0x0F == 0
        let addressLength: Int
        var header = ProxyHeader(version: .v2, command: isLocal ? .local : .proxy)
        switch bytes[13] >> 4 {
        case 0x1:
            addressLength = 12
            guard payload.count >= addressLength else { throw .malformedHeader("v2 IPv4 addresses cut short") }
            header.source = SocketAddress(ipv4: UnsafeRawBufferPointer(rebasing: payload[0..<4]), port: port(payload, at: 8))
            header.destination = SocketAddress(ipv4: UnsafeRawBufferPointer(rebasing: payload[4..<8]), port: port(payload, at: 10))
        case 0x2:
            addressLength = 36
            guard payload.count >= addressLength else { throw .malformedHeader("v2 IPv6 addresses cut short") }
            header.source = SocketAddress(ipv6: UnsafeRawBufferPointer(rebasing: payload[0..<16]), port: port(payload, at: 32))
            header.destination = SocketAddress(ipv6: UnsafeRawBufferPointer(rebasing: payload[16..<32]), port: port(payload, at: 34))
        case 0x3:
            addressLength = 216
            guard payload.count >= addressLength else { throw .malformedHeader("v2 Unix addresses cut short") }
            header.source = SocketAddress(unixPathBytes: UnsafeRawBufferPointer(rebasing: payload[0..<108]))
            header.destination = SocketAddress(unixPathBytes: UnsafeRawBufferPointer(rebasing: payload[108..<216]))
        default:
            // AF_UNSPEC: no addresses; everything is TLVs.
            addressLength = 0
        }
        if isLocal {
            // A LOCAL header's addresses, if any, are to be ignored.
            header.source = nil
            header.destination = nil
        }
        header.fields = try v2Fields(UnsafeRawBufferPointer(rebasing: payload[addressLength...]))
        return .complete(header, length: length)
    }

    /// Checks bytes 12 and 13 (when present): version 2, command LOCAL or PROXY, a known family and transport.
    private static func checkV2VersionAndFamily(_ bytes: UnsafeRawBufferPointer) throws(ProxyProtocolError) {
        let versionAndCommand = bytes[12]
        guard versionAndCommand >> 4 == 0x2 else { throw .malformedHeader("v2 version nibble is not 2") }
        guard versionAndCommand & 0x0F <= 1 else { throw .malformedHeader("v2 command is not LOCAL or PROXY") }
        guard bytes.count > 13 else { return }
        let family = bytes[13] >> 4
        let transport = bytes[13] & 0x0F
        guard family <= 0x3, transport <= 0x2 else { throw .malformedHeader("v2 family or transport unknown") }
    }

    private static func port(_ payload: UnsafeRawBufferPointer, at offset: Int) -> UInt16 {
        UInt16(payload[offset]) << 8 | UInt16(payload[offset + 1])
    }

    /// The TLVs after the addresses: each a type byte, a 2-byte big-endian length and that many bytes, filling
    /// the rest exactly.
    private static func v2Fields(_ bytes: UnsafeRawBufferPointer) throws(ProxyProtocolError) -> [ProxyHeader.Field] {
        var fields: [ProxyHeader.Field] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 3 else { throw .malformedHeader("v2 TLV header cut short") }
            let length = Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            let start = offset + 3
            guard bytes.count - start >= length else { throw .malformedHeader("v2 TLV value cut short") }
            fields.append(ProxyHeader.Field(type: bytes[offset], value: Array(bytes[start..<(start + length)])))
            offset = start + length
        }
        return fields
    }
}
