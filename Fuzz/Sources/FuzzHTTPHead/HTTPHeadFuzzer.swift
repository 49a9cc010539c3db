// Fuzzes the demo's HTTP request-head parsing, both ways the demo reads a head:
// - blocking modes: `HTTPRequestParser.parse` over `RequestReader.readLine(maxLength:)`, as `HTTPHandler`;
// - event mode: `HTTPHeadScanner.scan` over the bytes buffered so far (rescanned as more arrive), then
//   `HTTPHeadScanner.parse` of the complete head, as `EventHTTPHandler`.
// Checked: nothing traps; only `HTTPParseError` is thrown; an accepted head satisfies the parser's own
// rules (token method, printable target, HTTP/1.x, within the limits, lowercase token names, values without
// control characters); the scanner's verdict on a prefix never contradicts its verdict on more bytes; and
// for a complete head both ways agree (the same request, or errors with the same status) and the blocking
// reader consumed exactly the head.
//
// Input: a flags byte (bit 0: small limits from the next seven bytes; else the defaults), two prefix cut
// points, then the bytes a client sent.
@testable import DemoHTTP
import FuzzSupport
import SocketServer

private func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"):
        true
    default:
        Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
    }
}

/// A parse's result in comparable form.
private enum Parsed: Equatable {
    case request(method: String, target: [UInt8], version: String, headers: [String])
    case closed
    case rejected(status: Int?)

    init(_ body: () throws -> HTTPRequest?) {
        do {
            guard let request = try body() else {
                self = .closed
                return
            }
            self = .request(
                method: request.method, target: request.target, version: request.version.description,
                headers: request.headers.map { "\($0.name): \($0.value)" })
        } catch let error as HTTPParseError {
            self = .rejected(status: error.status?.code)
        } catch {
            fuzzFail("the parser threw \(error), not an HTTPParseError")
        }
    }
}

private func checkAccepted(_ request: HTTPRequest, parser: HTTPRequestParser) {
    fuzzRequire(!request.method.isEmpty && request.method.utf8.allSatisfy(isTokenByte),
                "accepted method \(describe(Array(request.method.utf8)))")
    fuzzRequire(!request.target.isEmpty && request.target.allSatisfy { (0x21...0x7E).contains($0) },
                "accepted target \(describe(request.target))")
    fuzzRequire(request.version.major == 1 && (0...9).contains(request.version.minor),
                "accepted version \(request.version)")
    fuzzRequire(request.headers.count <= parser.maxHeaderCount, "accepted \(request.headers.count) header fields")
    for (name, value) in request.headers {
        fuzzRequire(!name.isEmpty && name.utf8.allSatisfy { isTokenByte($0) && !(0x41...0x5A).contains($0) },
                    "accepted field name \(describe(Array(name.utf8)))")
        fuzzRequire(!value.utf8.contains { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F },
                    "accepted a control character in \(describe(Array(value.utf8)))")
        fuzzRequire(value.first != " " && value.first != "\t" && value.last != " " && value.last != "\t",
                    "field value not trimmed: \(describe(Array(value.utf8)))")
    }
    // What the handlers compute from every request: none of it may trap.
    _ = request.requestLine
    _ = request.wantsKeepAlive
    do {
        if case .length(let length) = try request.bodyFraming() {
            fuzzRequire(length > 0, "body framing .length(\(length))")
        }
    } catch {
        fuzzRequire(error.status == .badRequest, "bodyFraming threw \(error)")
    }
}

/// One input. Also exported under libFuzzer's name, which its (unused) `main` refers to.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPHead(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, count: size)
    var parser = HTTPRequestParser()
    if input.byte() & 1 == 1 {
        parser.maxRequestLineLength = 1 + input.uint16() % 1024
        parser.maxHeaderLineLength = 1 + input.uint16() % 1024
        parser.maxHeaderBytes = 1 + input.uint16() % 4096
        parser.maxHeaderCount = 1 + Int(input.byte() % 16)
    }
    let cuts = [input.uint16(), input.uint16()]
    let bytes = input.rest()

    // Blocking modes: lines from a reader, as HTTPHandler reads them.
    let reader = RequestReader(bytes: bytes)
    var blocking: HTTPRequest?
    let blockingResult = Parsed {
        blocking = try parser.parse { maxLength, _ in try reader.readLine(maxLength: maxLength) }
        return blocking
    }
    if let blocking { checkAccepted(blocking, parser: parser) }

    // Event mode: the scanner's verdict on the bytes so far must hold as more arrive.
    let verdict = bytes.withUnsafeBytes { HTTPHeadScanner.scan($0, parser: parser) }
    for cut in cuts where !bytes.isEmpty {
        let prefix = Array(bytes.prefix(cut % (bytes.count + 1)))
        let early = prefix.withUnsafeBytes { HTTPHeadScanner.scan($0, parser: parser) }
        // A head found in fewer bytes is the same head in more (so never shorter than the full verdict's).
        if case .complete = early {
            fuzzRequire(early == verdict, "a prefix of \(prefix.count) bytes is \(early), all \(bytes.count) are \(verdict)")
        }
    }
    guard case .complete(let length) = verdict else { return 0 }
    fuzzRequire(length > 0 && length <= bytes.count, "complete head of \(length) in \(bytes.count) bytes")
    let head = Array(bytes[..<length])
    fuzzRequire(head.last == UInt8(ascii: "\n"), "a complete head that does not end in a newline")

    var evented: HTTPRequest?
    let eventResult = Parsed {
        evented = try HTTPHeadScanner.parse(head, parser: parser)
        return evented
    }
    if let evented { checkAccepted(evented, parser: parser) }

    fuzzRequire(blockingResult == eventResult,
                "blocking modes parse \(describe(head)) as \(blockingResult), event mode as \(eventResult)")
    if blocking != nil {
        fuzzRequire(bytes.count - reader.bufferedCount == length,
                    "the blocking parser consumed \(bytes.count - reader.bufferedCount) bytes of a \(length)-byte head")
    }
    return 0
}

@main
enum HTTPHeadFuzzer {
    static func main() {
        runFuzzer { data, size in fuzzHTTPHead(data, size) }
    }
}
