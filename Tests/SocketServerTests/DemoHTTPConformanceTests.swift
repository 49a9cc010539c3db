import Foundation
import Glibc
import Testing

@testable import SocketServer

/// Every mode of the HTTP service, async included.
private let allHTTPModes = httpModes + ["async"]

/// `curl -s -i` with `options`, for one URL.
private func curl(_ url: String, _ options: [String] = []) throws -> HTTPReply {
    let result = try runTool(["curl", "-s", "-i", "--max-time", "20"] + options + [url])
    #expect(result.status == 0, "curl \(options) \(url): status \(result.status), \(result.stderr)")
    return HTTPReply(result.stdout)
}

@Suite("socketserver-demo http: conditional requests, ranges, Host, early errors (issue 14)", .serialized)
struct DemoHTTPConformanceTests {
    init() throws {
        try #require(toolAvailable("curl"), "curl is missing: run `make deps`")
    }

    private func withServer<Result>(
        mode: String,
        _ extra: [String] = [],
        _ body: (DemoProcess, HTTPFixture) throws -> Result
    ) throws -> Result {
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        return try withDemo(["http", "--mode", mode, "--port", "0", "--directory", fixture.root] + extra) { demo throws in
            try body(demo, fixture)
        }
    }

    @Test("If-None-Match with the ETag and If-Modified-Since (curl -z) get 304; a stale validator gets 200", arguments: allHTTPModes)
    func conditionalRequests(mode: String) throws {
        try withServer(mode: mode) { demo, _ throws in
            let url = "\(demo.baseURL)/hello.txt"
            let first = try curl(url)
            #expect(first.statusCode == 200)
            let tag = try #require(first.headers["etag"], "no ETag: \(first.headers)")
            let modified = try #require(first.headers["last-modified"])

            let byTag = try curl(url, ["-H", "If-None-Match: \(tag)"])
            #expect(byTag.statusCode == 304)
            #expect(byTag.body.isEmpty)
            #expect(byTag.headers["etag"] == tag)
            let byList = try curl(url, ["-H", "If-None-Match: \"other\", W/\(tag)"])
            #expect(byList.statusCode == 304, "weak comparison of a list")
            let otherTag = try curl(url, ["-H", "If-None-Match: \"other\""])
            #expect(otherTag.statusCode == 200 && otherTag.text == "hello\n")

            let byDate = try curl(url, ["-z", modified])
            #expect(byDate.statusCode == 304)
            let stale = try curl(url, ["-H", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT"])
            #expect(stale.statusCode == 200 && stale.text == "hello\n")
            // If-None-Match decides when both are present.
            let both = try curl(url, ["-H", "If-None-Match: \"other\"", "-H", "If-Modified-Since: \(modified)"])
            #expect(both.statusCode == 200)
        }
    }

    @Test("Range: 206 with Content-Range for a range, a suffix and an open end; 416 past the end; If-Range", arguments: allHTTPModes)
    func ranges(mode: String) throws {
        try withServer(mode: mode) { demo, fixture throws in
            let url = "\(demo.baseURL)/large.bin"
            let whole = try fixture.contents("large.bin")
            let size = whole.count

            let middle = try curl(url, ["-r", "1000-1999"])
            #expect(middle.statusCode == 206)
            #expect(middle.headers["content-range"] == "bytes 1000-1999/\(size)")
            #expect(middle.headers["content-length"] == "1000")
            #expect(middle.body == Array(whole[1000..<2000]))

            let suffix = try curl(url, ["-r", "-100"])
            #expect(suffix.statusCode == 206)
            #expect(suffix.body == Array(whole[(size - 100)...]))

            let openEnded = try curl(url, ["-r", "\(size - 10)-"])
            #expect(openEnded.statusCode == 206 && openEnded.body == Array(whole[(size - 10)...]))

            let past = try curl(url, ["-r", "\(size)-"])
            #expect(past.statusCode == 416)
            #expect(past.headers["content-range"] == "bytes */\(size)")

            let several = try curl(url, ["-r", "0-1,5-6"])
            #expect(several.statusCode == 200 && several.body.count == size, "several ranges: the whole file")

            let tag = try #require(try curl(url, ["-I"]).headers["etag"])
            let matching = try curl(url, ["-r", "0-9", "-H", "If-Range: \(tag)"])
            #expect(matching.statusCode == 206 && matching.body == Array(whole[0..<10]))
            let changed = try curl(url, ["-r", "0-9", "-H", "If-Range: \"not-the-tag\""])
            #expect(changed.statusCode == 200 && changed.body.count == size)
        }
    }

    @Test("curl -C - resumes a partial download", arguments: allHTTPModes)
    func resume(mode: String) throws {
        try withServer(mode: mode) { demo, fixture throws in
            let whole = try fixture.contents("large.bin")
            let partial = fixture.base.path + "/partial.bin"
            try Data(whole[..<300_000]).write(to: URL(fileURLWithPath: partial))
            let result = try runTool(["curl", "-s", "-S", "--max-time", "20", "-C", "-", "-o", partial, "\(demo.baseURL)/large.bin"])
            #expect(result.status == 0, "curl -C -: \(result.stderr)")
            let resumed = Array(try Data(contentsOf: URL(fileURLWithPath: partial)))
            #expect(resumed.count == whole.count)
            #expect(resumed == whole)
            #expect(demo.waitForLog("206 \(whole.count - 300_000)"), "the resume was a 206 of the rest")
        }
    }

    @Test("two Host headers get 400 and close", arguments: allHTTPModes)
    func duplicateHost(mode: String) throws {
        try withServer(mode: mode) { demo, _ throws in
            let request = "GET /hello.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
            let reply = HTTPReply(try rawExchange(try demo.socketAddress(), Array(request.utf8)))
            #expect(reply.statusCode == 400)
            #expect(reply.headers["connection"] == "close")
            #expect(try curl("\(demo.baseURL)/hello.txt").statusCode == 200)
        }
    }

    @Test("a malformed request line gets 400 at once, without waiting for the rest of the head", arguments: allHTTPModes)
    func earlyBadRequest(mode: String) throws {
        // A --timeout far beyond the client's: a server that waits for the head's end fails the read.
        try withServer(mode: mode, ["--timeout", "60"]) { demo, _ throws in
            let client = try TestClient(connectingTo: try demo.socketAddress(), timeout: .seconds(10))
            defer { client.close() }
            try client.send("GARBAGE\r\nHost: t\r\n")
            let reply = HTTPReply(Array(try client.readToEnd().utf8))
            #expect(reply.statusCode == 400)
            #expect(try curl("\(demo.baseURL)/hello.txt").statusCode == 200)
        }
    }

    @Test("event mode: bytes no request line may hold (a TLS hello) get 400 at once")
    func earlyBadRequestForBinary() throws {
        try withServer(mode: "event", ["--timeout", "60"]) { demo, _ throws in
            let client = try TestClient(connectingTo: try demo.socketAddress(), timeout: .seconds(10))
            defer { client.close() }
            try client.socket.sendAll([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])
            let reply = HTTPReply(Array(try client.readToEnd().utf8))
            #expect(reply.statusCode == 400)
        }
    }

    @Test("async mode: a client that stops mid-request gets 408 after --timeout; a silent one is closed quietly")
    func asyncRequestTimeout() throws {
        try withServer(mode: "async", ["--timeout", "0.5"]) { demo, _ throws in
            let address = try demo.socketAddress()
            let slow = try TestClient(connectingTo: address, timeout: .seconds(15))
            defer { slow.close() }
            try slow.send("GET /hello.txt HTTP/1.1\r\n")
            let reply = HTTPReply(Array(try slow.readToEnd().utf8))
            #expect(reply.statusCode == 408)
            let silent = try TestClient(connectingTo: address, timeout: .seconds(15))
            defer { silent.close() }
            #expect(try silent.readToEnd() == "")
            #expect(try curl("\(demo.baseURL)/hello.txt").statusCode == 200)
        }
    }

    @Test("a 16 MiB file to a slow reader, sent with sendfile, arrives whole", arguments: allHTTPModes)
    func largeFileToSlowReader(mode: String) throws {
        try withServer(mode: mode) { demo, fixture throws in
            let big = fixture.root + "/big.bin"
            let whole = Array(try fixture.contents("large.bin"))
            var content: [UInt8] = []
            for _ in 0..<16 { content += whole }
            try Data(content).write(to: URL(fileURLWithPath: big))
            // --limit-rate keeps curl well behind the server's socket buffers for the first seconds.
            let target = fixture.base.path + "/big.out"
            let result = try runTool([
                "curl", "-s", "-S", "--max-time", "60", "--limit-rate", "8M", "-o", target, "\(demo.baseURL)/big.bin",
            ], timeout: .seconds(90))
            #expect(result.status == 0, "\(result.stderr)")
            let received = Array(try Data(contentsOf: URL(fileURLWithPath: target)))
            #expect(received.count == content.count)
            #expect(received == content)
        }
    }
}

@Suite(
    "socketserver-demo http: keep-alive under wrk -c100 starves no connection (issue 14)", .serialized)
struct DemoHTTPFairnessTests {
    @Test("wrk -c100 against --mode pool --workers 2 and --mode forking: all 100 connections answered", arguments: [
        ["--mode", "pool", "--workers", "2"], ["--mode", "forking"],
    ])
    func everyConnectionAnswered(mode: [String]) throws {
        try #require(toolAvailable("wrk"), "wrk is missing: run `make deps`")
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        try withDemo(["http", "--port", "0", "--directory", fixture.root] + mode) { demo throws in
            let result = try runTool(
                ["wrk", "-t2", "-c100", "-d4s", "--timeout", "5s", "\(demo.baseURL)/hello.txt"], timeout: .seconds(60))
            #expect(result.status == 0, "wrk: \(result.output) \(result.stderr)")
            // Counted from the server's side: the distinct client addresses of the request log.
            #expect(eventually {
                Set(demo.standardError.split(separator: "\n").compactMap { line -> Substring? in
                    guard line.contains("\"GET /hello.txt HTTP/1.1\" 200"), let start = line.range(of: "client=") else {
                        return nil
                    }
                    return line[start.upperBound...].prefix { $0 != " " }
                }).count == 100
            }, "not every connection of wrk's 100 was answered")
        }
    }
}
