// Fuzzes the PROXY protocol header parser (`ProxyHeaderParser`) and the receiver that reads a header off a
// socket with it (`ProxyHeaderReceiver`), as the servers do.
// Checked: nothing traps; only `ProxyProtocolError` comes out of the parser; a complete header is within
// its version's bound and within the input; a prefix never contradicts the whole (a prefix shorter than a
// complete header is `.incomplete`, with the same total length when it knows one; a prefix that holds the
// header gives the same header); and the receiver, reading the same bytes from a socket pair, returns the
// same header and leaves every byte after it unread in the socket.
//
// Input: a flags byte (bits 0-1: v1, v2 or auto; bit 2: a small v2 cap from the next two bytes), a prefix
// cut point, then the bytes a proxy sent.
@testable import SocketServer
import FuzzSupport
import Glibc

private enum Verdict: Equatable {
    case incomplete(Int?)
    case complete(ProxyHeader, Int)
    case rejected
}

private func verdict(_ bytes: [UInt8], _ versions: ProxyProtocolConfiguration.Versions, cap: Int) -> Verdict {
    let result = bytes.withUnsafeBytes { raw in
        Result { () throws(ProxyProtocolError) in try ProxyHeaderParser.parse(raw, accepting: versions, maxLength: cap) }
    }
    switch result {
    case .success(.incomplete(let total)): return .incomplete(total)
    case .success(.complete(let header, let length)): return .complete(header, length)
    case .failure: return .rejected
    }
}

/// Writes `bytes` into one end of a socket pair, closes it, reads the header off the other end with the
/// receiver and returns its result and what was left unread.
private func receive(_ bytes: [UInt8], configuration: ProxyProtocolConfiguration) -> (ProxyHeader?, [UInt8]) {
    var ends: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else { fuzzFail("socketpair: \(errno)") }
    defer { close(ends[1]) }
    var size = Int32(1 << 20)
    setsockopt(ends[0], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    let sent = bytes.withUnsafeBytes { send(ends[0], $0.baseAddress, $0.count, 0) }
    fuzzRequire(sent == bytes.count, "socket pair took \(sent) of \(bytes.count) bytes")
    close(ends[0])
    var receiver = ProxyHeaderReceiver(configuration: configuration)
    var header: ProxyHeader?
    // Every byte is already there, so each step makes progress; the bound only guards against a loop.
    for _ in 0..<(bytes.count + 2) {
        do {
            if case .complete(let found) = try receiver.step(ends[1]) {
                header = found
                break
            }
        } catch {
            break
        }
    }
    var rest: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(ends[1], $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        guard count > 0 else { break }
        rest += chunk[0..<count]
    }
    return (header, rest)
}

/// One input. Also exported under libFuzzer's name, which its (unused) `main` refers to.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProxyHeader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, count: size)
    let flags = input.byte()
    let versions: ProxyProtocolConfiguration.Versions = [.v1, .v2, .auto, .auto][Int(flags & 3)]
    let cap = flags & 4 != 0 ? 16 + input.uint16() % 1024 : ProxyProtocolConfiguration.maxHeaderLengthLimit
    let cut = input.uint16()
    let bytes = input.rest()

    let whole = verdict(bytes, versions, cap: cap)
    if case .complete(let header, let length) = whole {
        let bound = header.version == .v1 ? ProxyHeaderParser.v1MaxLength : cap
        fuzzRequire(length > 0 && length <= bytes.count && length <= bound, "complete header of \(length) in \(bytes.count) bytes")
    }
    if case .incomplete = whole {
        fuzzRequire(bytes.count < max(cap, ProxyHeaderParser.v1MaxLength), "incomplete after \(bytes.count) bytes")
    }
    let prefix = Array(bytes.prefix(cut % (bytes.count + 1)))
    let early = verdict(prefix, versions, cap: cap)
    switch (early, whole) {
    case (.complete, _):
        fuzzRequire(early == whole, "a prefix of \(prefix.count) bytes gives \(early), all \(bytes.count) give \(whole)")
    case (.incomplete(let total), .complete(_, let length)):
        fuzzRequire(prefix.count < length, "a prefix of \(prefix.count) holding a \(length)-byte header is incomplete")
        fuzzRequire(total == nil || total == length, "prefix expects \(total ?? -1) bytes, the header has \(length)")
    case (.rejected, let later):
        fuzzRequire(later == .rejected, "a prefix of \(prefix.count) bytes is rejected, all \(bytes.count) give \(later)")
    default:
        break
    }

    guard
        let configuration = try? ProxyProtocolConfiguration(
            versions, trustedProxies: TrustedProxy.loopback, maxHeaderLength: cap)
    else { fuzzFail("configuration for cap \(cap) refused") }
    let (received, rest) = receive(bytes, configuration: configuration)
    if case .complete(let header, let length) = whole {
        fuzzRequire(received == header, "the receiver read \(String(describing: received)), the parser \(header)")
        fuzzRequire(rest == Array(bytes[length...]), "the receiver left \(rest.count) bytes, not \(bytes.count - length)")
    } else {
        fuzzRequire(received == nil, "the receiver accepted what the parser does not: \(describe(bytes))")
    }
    return 0
}

@main
enum ProxyHeaderFuzzer {
    static func main() {
        runFuzzer { data, size in fuzzProxyHeader(data, size) }
    }
}
