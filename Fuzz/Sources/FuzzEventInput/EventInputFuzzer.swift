// Fuzzes event mode's input path: `EventInput` (`readLine`, `read(n)`, `readAll`, `consume`) as a handler
// sees it from a real event-mode server, with the bytes it leaves unconsumed kept by the connection and
// offered again (`StreamConnection`'s delivery, its `ByteQueue`, redelivery after `resumeReading`), and
// what it echoes sent back through the zero-copy and staged write paths.
//
// One server (a Unix stream socket, one loop, small read chunks, input and output bounds) serves the
// whole run; each input is one connection. The client sends the payload in the chunks the input chose,
// each only after the handler acknowledged every byte before it, so each `bytesReceived` call sees what
// earlier calls left plus (at most) one chunk. The handler checks every view and every read against the
// payload, the client checks every echoed byte, and the connection must close cleanly, or with
// `inputLimitExceeded` exactly when the handler left more than `maxBufferedInput` unconsumed.
//
// Input: script count, then per script an operation count and two bytes per operation; chunk-size count and
// sizes; then the payload.
import FuzzSupport
import Glibc
import Logging
import SocketServer
import Synchronization

private let readChunkSize = 1024
private let maxBufferedInput = 3000

/// One input's program and what the server side observed of it.
private struct Session {
    var payload: [UInt8] = []
    var scripts: [[(UInt8, UInt8)]] = []
    /// Bytes of the payload the handler has consumed.
    var consumed = 0
    var calls = 0
    var expectLimitClose = false
    var closed = false
    var closedByInputLimit = false
    var closeError: String?
}

private let session = Mutex(Session())
/// Posted by `connectionClosed`: the harness waits for it before the next input.
nonisolated(unsafe) private let closedSemaphore: UnsafeMutablePointer<sem_t> = {
    let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    sem_init(semaphore, 0, 0)
    return semaphore
}()

/// Frames the handler writes: `A` + the stream position the handler has seen up to (8 bytes), and `E` +
/// payload offset (4) + length (4) + the bytes it consumed there.
private enum Frame {
    static let ack = UInt8(ascii: "A")
    static let echo = UInt8(ascii: "E")
}

private func littleEndian(_ value: Int, bytes: Int) -> [UInt8] {
    (0..<bytes).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}

final class FuzzHandler: EventStreamHandler {
    private var payload: [UInt8] = []
    private var scripts: [[(UInt8, UInt8)]] = []
    private var consumed = 0
    private var calls = 0
    private var pauses = 0

    override func connectionOpened(_ connection: EventConnection) throws {
        session.withLock { state in
            payload = state.payload
            scripts = state.scripts
        }
    }

    override func bytesReceived(_ input: inout EventInput, on connection: EventConnection) throws {
        handle(&input, on: connection, ended: false)
    }

    override func inputEnded(_ input: inout EventInput, on connection: EventConnection) throws {
        handle(&input, on: connection, ended: true)
        connection.close()
    }

    override func connectionClosed(_ connection: EventConnection, error: (any Error)?) {
        session.withLock { state in
            state.closed = true
            if case .inputLimitExceeded(let limit)? = error as? EventModeError, limit == maxBufferedInput {
                state.closedByInputLimit = true
            }
            state.closeError = error.map { "\($0)" }
        }
        sem_post(closedSemaphore)
    }

    private func handle(_ input: inout EventInput, on connection: EventConnection, ended: Bool) {
        let start = consumed
        let end = start + input.count
        fuzzRequire(end <= payload.count, "call \(calls) sees \(input.count) bytes from \(start), past the payload")
        fuzzRequire(
            input.readableBytes.elementsEqual(payload[start..<end]),
            "call \(calls) sees \(describe(input.readableBytes)), expected \(describe(payload[start..<end]))")
        if ended {
            fuzzRequire(end == payload.count, "end of input with \(payload.count - end) bytes never delivered")
        }
        fuzzRequire(input.consumedCount == 0, "a new view starts with consumedCount \(input.consumedCount)")

        var position = start
        var echo = false
        let script = scripts.isEmpty ? [] : scripts[calls % scripts.count]
        calls += 1

        func expectView(_ view: UnsafeRawBufferPointer?, _ expected: Range<Int>?, _ what: String) {
            guard let expected else {
                fuzzRequire(view == nil, "\(what) returned \(describe(view ?? .init(start: nil, count: 0))), expected nil")
                return
            }
            guard let view else { fuzzFail("\(what) returned nil, expected \(describe(payload[expected]))") }
            fuzzRequire(view.elementsEqual(payload[expected]),
                        "\(what) returned \(describe(view)), expected \(describe(payload[expected]))")
            if echo && !view.isEmpty {
                connection.write([Frame.echo] + littleEndian(expected.lowerBound, bytes: 4)
                                 + littleEndian(expected.count, bytes: 4))
                connection.write(view)
            }
            position = expected.upperBound
        }

        for (kind, argument) in script {
            switch kind % 10 {
            case 0:
                let newline = payload[position..<end].firstIndex(of: UInt8(ascii: "\n"))
                expectView(input.readLine(), newline.map { position..<($0 + 1) }, "readLine")
            case 1:
                var lines = 0
                while lines < 64 {
                    let newline = payload[position..<end].firstIndex(of: UInt8(ascii: "\n"))
                    let line = input.readLine()
                    expectView(line, newline.map { position..<($0 + 1) }, "readLine (loop)")
                    if line == nil { break }
                    lines += 1
                }
            case 2, 3:
                let count = kind % 10 == 2 ? Int(argument) : Int(argument) * 16 - 8
                let expected = count >= 0 && end - position >= count ? position..<(position + count) : nil
                expectView(input.read(count), expected, "read(\(count))")
            case 4:
                expectView(input.readAll(), position..<end, "readAll")
            case 5:
                let count = Int(argument) - 8
                input.consume(count)
                position += min(max(count, 0), end - position)
            case 6:
                echo.toggle()
            case 7:
                // Kept bytes must be offered again once reading resumes, without new input. At most three
                // times a connection: a handler that pauses on every call, redeliveries included, never
                // reads again (by its own choice).
                if !ended && argument & 1 == 0 && pauses < 3 {
                    pauses += 1
                    connection.pauseReading()
                    _ = connection.handle.execute { $0.resumeReading() }
                }
            default:
                break
            }
            fuzzRequire(input.count == end - position, "count \(input.count), expected \(end - position)")
            fuzzRequire(input.consumedCount == position - start, "consumedCount \(input.consumedCount)")
            fuzzRequire(input.isEmpty == (position == end), "isEmpty \(input.isEmpty) with \(end - position) left")
            fuzzRequire(input.readableBytes.count == end - position, "readableBytes.count")
        }
        consumed = position
        let kept = end - position
        session.withLock { state in
            state.consumed = position
            state.calls = calls
            if !ended && kept > maxBufferedInput { state.expectLimitClose = true }
        }
        connection.write([Frame.ack] + littleEndian(end, bytes: 8))
    }
}

/// The server of the whole run, serving on its own thread until the process exits.
private final class Fixture: @unchecked Sendable {
    let path: String
    let server: TCPServer

    init() {
        let directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        path = "\(directory)/fuzz-event-input-\(getpid()).sock"
        do {
            server = try UnixStreamServer(
                SocketAddress(unixPath: path),
                eventHandler: FuzzHandler.self,
                configuration: .init(
                    loops: 1, readChunkSize: readChunkSize, maxBufferedInput: maxBufferedInput,
                    outputHighWatermark: 700, outputLowWatermark: 100),
                logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() })
        } catch {
            fuzzFail("cannot start the event-mode server: \(error)")
        }
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(&thread, nil, { argument in
            guard let argument else { return nil }
            let fixture = Unmanaged<Fixture>.fromOpaque(argument).takeRetainedValue()
            do {
                try fixture.server.serveForever()
            } catch {
                fuzzFail("serveForever threw \(error)")
            }
            return nil
        }, context)
        fuzzRequire(result == 0, "pthread_create failed: \(result)")
        pthread_detach(thread)
        atexit { _ = fixture.path.withCString { unlink($0) } }
    }
}

private let fixture = Fixture()

/// The client's side of one connection.
private struct Client {
    let descriptor: Int32
    let payload: [UInt8]
    private var received: [UInt8] = []
    private(set) var acknowledged = 0
    private(set) var sawEndOfFile = false

    init(path: String, payload: [UInt8]) {
        self.payload = payload
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        fuzzRequire(descriptor >= 0, "socket failed: errno \(errno)")
        let address = try? SocketAddress(unixPath: path)
        guard let address else { fuzzFail("bad socket path \(path)") }
        let connected = address.withSockAddr { connect(descriptor, $0, $1) }
        fuzzRequire(connected == 0, "connect failed: errno \(errno)")
    }

    func send(_ bytes: ArraySlice<UInt8>) {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 && errno == EINTR { continue }
            // The server may close on a broken limit before taking everything.
            guard sent > 0 else { return }
            offset += sent
        }
    }

    /// Reads frames until the handler has acknowledged `position`, or end of file.
    mutating func await(_ position: Int) {
        while acknowledged < position && !sawEndOfFile {
            parseFrames()
            if acknowledged >= position { break }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                // ECONNRESET: the server closed with unread input (a broken limit).
                sawEndOfFile = true
                break
            }
            received += chunk[..<count]
        }
        parseFrames()
        fuzzRequire(acknowledged <= payload.count, "acknowledged \(acknowledged) of \(payload.count)")
    }

    private mutating func parseFrames() {
        while let kind = received.first {
            switch kind {
            case Frame.ack:
                guard received.count >= 9 else { return }
                let position = (0..<8).reduce(0) { $0 | Int(received[1 + $1]) << (8 * $1) }
                fuzzRequire(position >= acknowledged, "acknowledgements went back: \(position) < \(acknowledged)")
                acknowledged = position
                received.removeFirst(9)
            case Frame.echo:
                guard received.count >= 9 else { return }
                let offset = (0..<4).reduce(0) { $0 | Int(received[1 + $1]) << (8 * $1) }
                let length = (0..<4).reduce(0) { $0 | Int(received[5 + $1]) << (8 * $1) }
                guard received.count >= 9 + length else { return }
                fuzzRequire(offset + length <= payload.count, "echo of \(length) bytes at \(offset) is past the payload")
                fuzzRequire(
                    received[9..<(9 + length)].elementsEqual(payload[offset..<(offset + length)]),
                    "echo at \(offset) is \(describe(received[9..<(9 + length)])), "
                        + "expected \(describe(payload[offset..<(offset + length)]))")
                received.removeFirst(9 + length)
            default:
                fuzzFail("unexpected byte \(kind) in the server's output")
            }
        }
    }
}

/// One input. Also exported under libFuzzer's name, which its (unused) `main` refers to.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEventInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, count: size)
    var scripts: [[(UInt8, UInt8)]] = []
    for _ in 0..<(1 + Int(input.byte() % 8)) {
        scripts.append((0..<Int(input.byte() % 8)).map { _ in (input.byte(), input.byte()) })
    }
    let sizes = input.take(Int(input.byte()))
    let payload = input.rest()

    session.withLock { $0 = Session(payload: payload, scripts: scripts) }
    var client = Client(path: fixture.path, payload: payload)
    var offset = 0
    var index = 0
    while offset < payload.count && !client.sawEndOfFile {
        // Chunks up to 4 KiB: more than one read chunk, so some arrive in pieces.
        let wanted = sizes.isEmpty ? 512 : 1 + (Int(sizes[index % sizes.count]) * 16 + index) % 4096
        index += 1
        let count = min(wanted, payload.count - offset)
        client.send(payload[offset..<(offset + count)])
        offset += count
        client.await(offset)
    }
    if !client.sawEndOfFile {
        _ = shutdown(client.descriptor, Int32(SHUT_WR))
        client.await(Int.max)
    }
    close(client.descriptor)

    // The server's side of the connection is closed once its handler was told; wait for that, at most
    // 10 s (libFuzzer's -timeout would report a hang too, with less to say).
    var deadline = timespec()
    clock_gettime(CLOCK_REALTIME, &deadline)
    deadline.tv_sec += 10
    while sem_timedwait(closedSemaphore, &deadline) != 0 {
        fuzzRequire(errno == EINTR, "the connection did not close within 10 s of the client's")
    }
    let result = session.withLock { $0 }
    fuzzRequire(result.closedByInputLimit == result.expectLimitClose,
                "kept more than maxBufferedInput: \(result.expectLimitClose); closed with \(result.closeError ?? "no error")")
    if !result.expectLimitClose {
        fuzzRequire(result.closeError == nil, "closed with \(result.closeError ?? "")")
        fuzzRequire(client.acknowledged == payload.count,
                    "acknowledged \(client.acknowledged) of \(payload.count) bytes")
        fuzzRequire(result.consumed <= payload.count, "consumed \(result.consumed)")
    }
    return 0
}

@main
enum EventInputFuzzer {
    static func main() {
        runFuzzer { data, size in fuzzEventInput(data, size) }
    }
}
