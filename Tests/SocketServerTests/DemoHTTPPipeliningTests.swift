import Foundation
import Glibc
import Testing

@testable import SocketServer

/// Reads HTTP/1.1 responses framed by Content-Length from one connection, as they arrive.
private struct PipelinedResponseReader {
    let client: TestClient
    private var buffer: [UInt8] = []

    init(_ client: TestClient) { self.client = client }

    /// The next response (head parsed, body complete). Throws when the socket times out or closes first.
    mutating func next() throws -> HTTPReply {
        let separator = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        var searched = 0
        while headEnd == nil {
            if buffer.count >= 4 {
                for index in max(searched - 3, 0)...(buffer.count - 4) where Array(buffer[index..<(index + 4)]) == separator {
                    headEnd = index + 4
                    break
                }
                searched = buffer.count
            }
            if headEnd == nil { try receiveMore() }
        }
        guard let headEnd else { throw DemoHarnessError(description: "no head") }
        let head = HTTPReply(Array(buffer[..<headEnd]))
        guard let length = head.headers["content-length"].flatMap({ Int($0) }) else {
            throw DemoHarnessError(description: "response without Content-Length: \(head.statusCode)")
        }
        while buffer.count < headEnd + length { try receiveMore() }
        let reply = HTTPReply(Array(buffer[..<(headEnd + length)]))
        buffer.removeFirst(headEnd + length)
        return reply
    }

    private mutating func receiveMore() throws {
        let bytes = try client.socket.receive(maxLength: 256 * 1024)
        guard !bytes.isEmpty else { throw DemoHarnessError(description: "the server closed the connection") }
        buffer += bytes
    }
}

@Suite("socketserver-demo http: pipelined downloads on one connection", .serialized)
struct DemoHTTPPipeliningTests {
    /// Ten pipelined GETs of a 1 MiB file in one send; the client then only reads (its write side stays
    /// open, nothing more is sent) and must get ten whole responses. Event mode used to answer 5 to 8 and
    /// leave the rest until the client sent more.
    @Test("ten pipelined 1 MiB GETs get ten responses", arguments: httpConcurrentModes)
    func pipelinedDownloads(mode: String) throws {
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        let expected = try fixture.contents("large.bin")
        try withDemo(["http", "--mode", mode, "--port", "0", "--directory", fixture.root]) { demo throws in
            for round in 0..<3 {
                // A response that stops for this long counts as lost.
                let client = try TestClient(connectingTo: try demo.socketAddress(), timeout: .seconds(15))
                defer { client.close() }
                let requests = 10
                let request = "GET /large.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                try client.send(String(repeating: request, count: requests))
                var reader = PipelinedResponseReader(client)
                for index in 0..<requests {
                    let reply: HTTPReply
                    do {
                        reply = try reader.next()
                    } catch {
                        Issue.record("\(mode), round \(round): response \(index + 1) of \(requests) missing: \(error)")
                        return
                    }
                    #expect(reply.statusCode == 200)
                    #expect(reply.body == expected, "\(mode), round \(round): body of response \(index + 1)")
                }
            }
        }
    }
}
