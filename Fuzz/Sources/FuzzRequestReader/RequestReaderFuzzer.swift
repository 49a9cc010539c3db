// Fuzzes `RequestReader` (a handler's `rfile`): a program of `readLine` / `readLineString` / `read(n)` /
// `readToEnd` / `readAvailable` / `close` calls over input that arrives in arbitrary chunks, checked
// against a model that sees the whole input at once. The reader's answers may not depend on how the bytes
// were cut.
//
// The bytes reach the reader through a real socket, three ways:
// - an AF_UNIX SOCK_SEQPACKET pair with a buffer size of 1 ... 512: each record the feeder thread sends is
//   what one receive returns (the reader always asks for at least its buffer size and records are never
//   longer), so the chunking is exactly the one the input chose, and every read is a short read;
// - an AF_UNIX SOCK_STREAM pair with buffer size 0 (receive only what each read needs), all bytes written
//   up front: the reader must never take a byte from the socket that no read asked for;
// - `RequestReader(bytes:)`, the reader over a datagram's payload.
//
// Input: mode, buffer size, maxLineLength, maxReadLength, operation count, chunk-size count, then three
// bytes per operation and one per chunk size, then the payload.
import FuzzSupport
import Glibc
import SocketServer

private enum Source {
    case records(bufferSize: Int)
    case stream
    case datagram
}

private enum Operation {
    case readLine(Int?)
    case readLineString(Int?)
    case read(Int)
    case readToEnd(Int)
    case readAvailable
    case close
    case checkBuffer

    init(_ kind: UInt8, _ value: Int) {
        switch kind % 16 {
        case 0, 1, 2, 3: self = .readLine(kind & 0x10 == 0 ? nil : value % 600 - 8)
        case 4: self = .readLineString(kind & 0x10 == 0 ? nil : value % 600 - 8)
        case 5, 6, 7: self = .read(value % 1200 - 16)
        case 8: self = .read(value)
        case 9, 10: self = .readToEnd(value % 3000 - 4)
        case 11: self = .readAvailable
        case 12: self = kind & 0xF0 == 0xF0 ? .close : .checkBuffer
        default: self = .checkBuffer
        }
    }
}

/// What a read must return: bytes, or a `SocketServerError`.
private enum Outcome: Equatable {
    case bytes([UInt8])
    case failure(SocketServerError)
}

/// The reader's contract, over the whole input: `rest` is what no read has returned yet.
private struct Model {
    var rest: ArraySlice<UInt8>
    let maxLineLength: Int
    let maxReadLength: Int

    mutating func readLine(_ maxLength: Int?) -> Outcome {
        let limit = max(min(maxLength ?? maxLineLength, maxLineLength), 1)
        if let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
            guard newline - rest.startIndex < limit else { return .failure(.lineTooLong(limit: limit)) }
            return .bytes(take(newline - rest.startIndex + 1))
        }
        guard rest.count < limit else { return .failure(.lineTooLong(limit: limit)) }
        return .bytes(take(rest.count))
    }

    mutating func read(_ count: Int) -> Outcome {
        guard count >= 0, count <= maxReadLength else {
            return .failure(.readLengthOutOfRange(count: count, limit: maxReadLength))
        }
        return .bytes(take(min(count, rest.count)))
    }

    mutating func readToEnd(_ maxLength: Int) -> Outcome {
        let limit = max(maxLength, 0)
        guard rest.count <= limit else { return .failure(.inputTooLong(limit: limit)) }
        return .bytes(take(rest.count))
    }

    private mutating func take(_ count: Int) -> [UInt8] {
        defer { rest = rest.dropFirst(count) }
        return Array(rest.prefix(count))
    }
}

/// Sends the payload as SEQPACKET records of the chosen sizes, then shuts its side down; stops early when
/// the reader's side closes.
private final class Feeder: @unchecked Sendable {
    let descriptor: Int32
    let payload: [UInt8]
    let sizes: [UInt8]
    let bufferSize: Int

    init(descriptor: Int32, payload: [UInt8], sizes: [UInt8], bufferSize: Int) {
        self.descriptor = descriptor
        self.payload = payload
        self.sizes = sizes
        self.bufferSize = bufferSize
    }

    func run() {
        var offset = 0
        var index = 0
        while offset < payload.count {
            let wanted = sizes.isEmpty ? bufferSize : 1 + Int(sizes[index % sizes.count]) % bufferSize
            index += 1
            let count = min(wanted, payload.count - offset)
            let sent = payload[offset..<(offset + count)].withUnsafeBytes { bytes -> Int in
                while true {
                    let result = send(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
                    if result >= 0 || errno != EINTR { return result }
                }
            }
            guard sent == count else { return }  // the reader closed: nothing more is wanted
            offset += count
        }
        _ = shutdown(descriptor, Int32(SHUT_WR))
    }
}

private func startThread(_ feeder: Feeder) -> pthread_t {
    var thread = pthread_t()
    let context = Unmanaged.passRetained(feeder).toOpaque()
    let result = pthread_create(&thread, nil, { argument in
        guard let argument else { return nil }
        Unmanaged<Feeder>.fromOpaque(argument).takeRetainedValue().run()
        return nil
    }, context)
    fuzzRequire(result == 0, "pthread_create failed: \(result)")
    return thread
}

private func socketPair(_ type: Int32) -> (Int32, Int32) {
    var ends: [Int32] = [-1, -1]
    let result = socketpair(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0, &ends)
    fuzzRequire(result == 0, "socketpair failed: errno \(errno)")
    return (ends[0], ends[1])
}

private func run(_ operations: [Operation], on reader: RequestReader, model: inout Model, source: Source) {
    // With buffer size 0 the reader receives only what a read needs, so it holds nothing after a read
    // that succeeded, until a read that failed (its bytes stay buffered) or `readAvailable` (which asks for
    // 4 KiB).
    var mayHoldUnrequestedBytes = false
    for (index, operation) in operations.enumerated() {
        let expected: Outcome
        let actual: Outcome
        func outcome(_ body: () throws -> [UInt8]) -> Outcome {
            do {
                return .bytes(try body())
            } catch let error as SocketServerError {
                return .failure(error)
            } catch {
                fuzzFail("operation \(index) \(operation) threw \(error)")
            }
        }
        switch operation {
        case .readLine(let maxLength):
            expected = model.readLine(maxLength)
            actual = outcome { try reader.readLine(maxLength: maxLength) }
        case .readLineString(let maxLength):
            let modelled = model.readLine(maxLength)
            if case .bytes(let bytes) = modelled {
                expected = .bytes(Array(String(decoding: bytes, as: UTF8.self).utf8))
            } else {
                expected = modelled
            }
            actual = outcome { Array(try reader.readLineString(maxLength: maxLength).utf8) }
        case .read(let count):
            expected = model.read(count)
            actual = outcome { try reader.read(count) }
        case .readToEnd(let maxLength):
            expected = model.readToEnd(maxLength)
            actual = outcome { try reader.readToEnd(maxLength: maxLength) }
        case .readAvailable:
            mayHoldUnrequestedBytes = true
            let before = model.rest
            actual = outcome { try reader.readAvailable() }
            guard case .bytes(let bytes) = actual else { fuzzFail("readAvailable threw: \(actual)") }
            fuzzRequire(
                before.starts(with: bytes) && (bytes.isEmpty == before.isEmpty),
                "readAvailable returned \(describe(bytes)) with \(describe(before)) unread")
            if case .datagram = source {
                fuzzRequire(bytes.count == before.count, "readAvailable over bytes returned part of them")
            }
            model.rest = before.dropFirst(bytes.count)
            expected = actual
        case .close:
            reader.close()
            model.rest = []
            expected = .bytes([])
            actual = .bytes([])
        case .checkBuffer:
            expected = .bytes([])
            actual = .bytes([])
        }
        fuzzRequire(
            actual == expected,
            "operation \(index) \(operation): expected \(render(expected)), got \(render(actual))")
        if case .failure = actual { mayHoldUnrequestedBytes = true }

        let buffered = reader.bufferedCount
        fuzzRequire(buffered >= 0 && buffered <= model.rest.count,
                    "bufferedCount \(buffered) with \(model.rest.count) bytes unread")
        switch source {
        case .datagram:
            fuzzRequire(buffered == model.rest.count, "a reader over bytes holds \(buffered) of \(model.rest.count)")
        case .stream:
            if !mayHoldUnrequestedBytes {
                fuzzRequire(buffered == 0, "buffer size 0, yet \(buffered) bytes received beyond what was read")
            }
        case .records:
            break
        }
    }
}

private func render(_ outcome: Outcome) -> String {
    switch outcome {
    case .bytes(let bytes): describe(bytes)
    case .failure(let error): "\(error)"
    }
}

/// One input. Also exported under libFuzzer's name, which its (unused) `main` refers to.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestReader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, count: size)
    let source: Source
    let mode = input.byte()
    let bufferSize = 1 + input.uint16() % 512
    switch mode % 3 {
    case 0: source = .records(bufferSize: bufferSize)
    case 1: source = .stream
    default: source = .datagram
    }
    let lineValue = input.uint16()
    let maxLineLength = lineValue == 0 ? 65536 : lineValue % 400 - 4
    let maxReadLength = input.uint16() % 2000 - 4
    let operationCount = Int(input.byte() % 48)
    let sizeCount = Int(input.byte())
    var operations: [Operation] = []
    for _ in 0..<operationCount {
        let kind = input.byte()
        operations.append(Operation(kind, input.uint16()))
    }
    // Whatever is left after the program reads to the end, so every byte is checked.
    operations.append(.readToEnd(1 << 20))
    let sizes = input.take(sizeCount)
    let payload = input.rest()

    switch source {
    case .datagram:
        let reader = RequestReader(bytes: payload, maxLineLength: maxLineLength)
        fuzzRequire(reader.maxLineLength == max(maxLineLength, 1), "maxLineLength \(reader.maxLineLength)")
        fuzzRequire(reader.maxReadLength == .max, "a reader over bytes has maxReadLength \(reader.maxReadLength)")
        fuzzRequire(reader.fileDescriptor == -1, "a reader over bytes has a descriptor")
        var model = Model(rest: payload[...], maxLineLength: reader.maxLineLength, maxReadLength: .max)
        run(operations, on: reader, model: &model, source: source)

    case .stream:
        let (readEnd, writeEnd) = socketPair(Int32(SOCK_STREAM.rawValue))
        let written = payload.withUnsafeBytes { bytes in
            send(writeEnd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
        }
        fuzzRequire(written == payload.count, "the payload does not fit the socket buffer: \(written)")
        _ = shutdown(writeEnd, Int32(SHUT_WR))
        let socket = Socket(adopting: readEnd, family: .unix, type: .stream)
        let reader = RequestReader(
            socket: socket, bufferSize: 0, maxLineLength: maxLineLength, maxReadLength: maxReadLength)
        fuzzRequire(reader.maxReadLength == max(maxReadLength, 0), "maxReadLength \(reader.maxReadLength)")
        var model = Model(rest: payload[...], maxLineLength: reader.maxLineLength, maxReadLength: reader.maxReadLength)
        run(operations, on: reader, model: &model, source: source)
        socket.close()
        close(writeEnd)

    case .records(let bufferSize):
        let (readEnd, writeEnd) = socketPair(Int32(SOCK_SEQPACKET.rawValue))
        let feeder = Feeder(descriptor: writeEnd, payload: payload, sizes: sizes, bufferSize: bufferSize)
        let thread = startThread(feeder)
        let socket = Socket(adopting: readEnd, family: .unix, type: .stream)
        let reader = RequestReader(
            socket: socket, bufferSize: bufferSize, maxLineLength: maxLineLength, maxReadLength: maxReadLength)
        var model = Model(rest: payload[...], maxLineLength: reader.maxLineLength, maxReadLength: reader.maxReadLength)
        run(operations, on: reader, model: &model, source: source)
        // Closing the reading side makes a feeder still blocked in `send` fail with EPIPE and return.
        socket.close()
        pthread_join(thread, nil)
        close(writeEnd)
    }
    return 0
}

@main
enum RequestReaderFuzzer {
    static func main() {
        runFuzzer { data, size in fuzzRequestReader(data, size) }
    }
}
