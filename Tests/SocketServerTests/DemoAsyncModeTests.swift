import Foundation
import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// `curl -s -i --path-as-is` for one URL.
private func asyncCurlReply(_ url: String, _ options: [String] = []) throws -> HTTPReply {
    let result = try runTool(["curl", "-s", "-i", "--path-as-is", "--max-time", "20"] + options + [url])
    #expect(result.status == 0, "curl \(url): status \(result.status), \(result.stderr)")
    return HTTPReply(result.stdout)
}

/// Splits bytes holding consecutive HTTP responses framed by Content-Length; stops at the first that is
/// incomplete or unframed.
private func splitResponses(_ bytes: [UInt8]) -> [HTTPReply] {
    let separator = Array("\r\n\r\n".utf8)
    var replies: [HTTPReply] = []
    var start = 0
    while start < bytes.count {
        var headEnd: Int?
        var index = start
        while index + 4 <= bytes.count {
            if bytes[index] == separator[0] && Array(bytes[index..<(index + 4)]) == separator {
                headEnd = index + 4
                break
            }
            index += 1
        }
        guard let headEnd else { break }
        let head = HTTPReply(Array(bytes[start..<headEnd]))
        guard let length = head.headers["content-length"].flatMap({ Int($0) }), headEnd + length <= bytes.count
        else { break }
        replies.append(HTTPReply(Array(bytes[start..<(headEnd + length)])))
        start = headEnd + length
    }
    return replies
}

/// What a helper thread hands back to the test.
private final class AsyncModeStatusBox: Sendable {
    let value = SanitizedMutex<Int32?>(nil)
}

@Suite("socketserver-demo --mode async: echo and http with async/await handlers", .serialized)
struct DemoAsyncModeTests {
    // MARK: - The option

    @Test("--help lists async with its summary; --loops is accepted with it")
    func helpAndLoops() throws {
        let executable = try #require(demoExecutablePath)
        let help = try runTool([executable, "echo", "--help"])
        #expect(help.status == 0)
        // The help text is wrapped to the terminal width: compare with runs of blanks collapsed.
        let flattened = help.output.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
        #expect(flattened.contains("async (async/await handlers on --loops event loops)"), "\(help.output)")
        #expect(flattened.contains("event, async;"), "async is among the --mode values: \(help.output)")
        try withDemo(["echo", "--mode", "async", "--loops", "2", "--port", "0"]) { demo throws in
            let client = try TestClient(connectingTo: try demo.socketAddress())
            defer { client.close() }
            try client.send("two loops\n")
            #expect(try client.readLine() == "two loops\n")
        }
    }

    @Test("udp-echo --mode async answers nc -u; with --delay-ms the handlers of many datagrams sleep at once")
    func udpEchoWithNetcat() throws {
        try withDemo(["udp-echo", "--mode", "async", "--loops", "2", "--port", "0"]) { demo throws in
            // nc -u sends its stdin as one datagram and prints the reply; -w2 quits after two idle seconds.
            let result = try runTool(["nc", "-u", "-w2", "127.0.0.1", "\(demo.port)"], input: Array("ping\n".utf8))
            #expect(result.output == "ping\n", "nc: \(result.status) \(result.stderr)")
        }
        // 20 datagrams whose replies each wait 300 ms: handled concurrently (one serving thread, 20 tasks),
        // every one answered.
        try withDemo(["udp-echo", "--mode", "async", "--loops", "1", "--delay-ms", "300", "--port", "0"]) { demo throws in
            let socket = try Socket(family: .inet, type: .datagram)
            defer { socket.close() }
            socket.timeout = .seconds(20)
            let address = try demo.socketAddress()
            for index in 0..<20 { try socket.send(Array("d\(index)".utf8), to: address) }
            var replies = Set<String>()
            for _ in 0..<20 {
                let (reply, _) = try socket.receiveFrom(maxLength: 64)
                replies.insert(String(decoding: reply, as: UTF8.self))
            }
            #expect(replies == Set((0..<20).map { "d\($0)" }))
        }
    }

    // MARK: - echo

    @Test("echo over TCP with nc")
    func echoTCP() throws {
        try #require(toolAvailable("nc"), "nc (netcat-openbsd) is missing: run `make deps`")
        try withDemo(["echo", "--mode", "async", "--port", "0"]) { demo throws in
            #expect(demo.address.hasPrefix("127.0.0.1:") && demo.port > 0)
            let result = try runTool(["nc", "-N", "127.0.0.1", "\(demo.port)"], input: Array("hello\nworld\n".utf8))
            #expect(result.status == 0, "nc: \(result.stderr)")
            #expect(result.output == "hello\nworld\n")
        }
    }

    @Test("echo over a Unix stream socket with nc -U")
    func echoUnix() throws {
        try #require(toolAvailable("nc"), "nc (netcat-openbsd) is missing: run `make deps`")
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path + "/echo.sock"
        try withDemo(["echo", "--mode", "async", "--unix", path]) { demo throws in
            #expect(demo.listeningLine == "listening on unix:\(path)")
            let result = try runTool(["nc", "-N", "-U", path], input: Array("over unix\n".utf8))
            #expect(result.status == 0, "nc: \(result.stderr)")
            #expect(result.output == "over unix\n")
        }
        #expect(!FileManager.default.fileExists(atPath: path), "the socket file is removed on shutdown")
    }

    @Test("a last line without newline is echoed at end of input")
    func echoLastLineWithoutNewline() throws {
        try #require(toolAvailable("nc"), "nc (netcat-openbsd) is missing: run `make deps`")
        try withDemo(["echo", "--mode", "async", "--port", "0"]) { demo throws in
            let result = try runTool(
                ["nc", "-N", "127.0.0.1", "\(demo.port)"], input: Array("first\nno newline".utf8))
            #expect(result.status == 0, "nc: \(result.stderr)")
            #expect(result.output == "first\nno newline")
        }
    }

    @Test("a line over 64 KiB closes only its own connection")
    func echoOverlongLine() throws {
        try withDemo(["echo", "--mode", "async", "--port", "0", "--log-level", "info"]) { demo throws in
            let address = try demo.socketAddress()
            let bystander = try TestClient(connectingTo: address)
            defer { bystander.close() }
            try bystander.send("before\n")
            #expect(try bystander.readLine() == "before\n")

            let abuser = try TestClient(connectingTo: address)
            defer { abuser.close() }
            let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 16 * 1024)
            for _ in 0..<5 { try? abuser.socket.sendAll(chunk) }
            // Closed with input unread, the client may see a reset instead of end of file.
            #expect(((try? abuser.readToEnd()) ?? "") == "", "the connection is closed without an echo")
            #expect(demo.waitForLog("line longer than 65536 bytes"), "stderr: \(demo.standardError)")

            // The connection that was open meanwhile, and a new one, are still served.
            try bystander.send("after\n")
            #expect(try bystander.readLine() == "after\n")
            let client = try TestClient(connectingTo: address)
            defer { client.close() }
            try client.send("still alive\n")
            #expect(try client.readLine() == "still alive\n")
        }
    }

    @Test("SIGTERM with an idle echo client: the connection closes and the server exits 0")
    func echoSigtermWithIdleClient() throws {
        let demo = try DemoProcess(["echo", "--mode", "async", "--port", "0"])
        defer { demo.stop(SIGKILL) }
        let client = try TestClient(connectingTo: try demo.socketAddress(), timeout: .seconds(20))
        defer { client.close() }
        try client.send("before\n")
        #expect(try client.readLine() == "before\n")
        demo.send(SIGTERM)
        // No shutdown notice reaches an async handler waiting for input: the mode's shutdown deadline
        // (5 s) closes the connection.
        #expect(try client.readToEnd() == "")
        #expect(demo.waitForExit(timeout: .seconds(20)) == 0, "stderr: \(demo.standardError)")
    }

    // MARK: - http

    private func withHTTP<Result>(
        _ extra: [String] = [],
        _ body: (DemoProcess, HTTPFixture) throws -> Result
    ) throws -> Result {
        try #require(toolAvailable("curl"), "curl is missing: run `make deps`")
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        return try withDemo(["http", "--mode", "async", "--port", "0", "--directory", fixture.root] + extra) {
            demo throws in
            try body(demo, fixture)
        }
    }

    @Test("http GET of small and 1 MiB files, HEAD without a body")
    func httpGetAndHead() throws {
        try withHTTP { demo, fixture throws in
            let text = try asyncCurlReply("\(demo.baseURL)/hello.txt")
            #expect(text.statusCode == 200)
            #expect(text.headers["content-type"] == "text/plain")
            #expect(text.headers["content-length"] == "6")
            #expect(text.text == "hello\n")

            let large = try asyncCurlReply("\(demo.baseURL)/large.bin")
            #expect(large.statusCode == 200)
            #expect(large.headers["content-length"] == "\(1 << 20)")
            #expect(large.body == (try fixture.contents("large.bin")))

            let head = HTTPReply(try runTool(["curl", "-s", "-I", "--max-time", "20", "\(demo.baseURL)/hello.txt"]).stdout)
            #expect(head.statusCode == 200)
            #expect(head.headers["content-length"] == "6")
            let raw = try rawExchange(
                try demo.socketAddress(),
                Array("HEAD /large.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8))
            #expect(HTTPReply(raw).statusCode == 200)
            #expect(HTTPReply(raw).headers["content-length"] == "\(1 << 20)")
            #expect(HTTPReply(raw).body.isEmpty, "nothing follows a HEAD response's head on the wire")
        }
    }

    @Test("http directory listing, redirect and index.html")
    func httpListing() throws {
        try withHTTP { demo, _ throws in
            let reply = try asyncCurlReply("\(demo.baseURL)/")
            #expect(reply.statusCode == 200)
            #expect(reply.headers["content-type"] == "text/html; charset=utf-8")
            #expect(reply.text.contains("Directory listing for /"))
            #expect(reply.text.contains("<a href=\"sub/\">sub/</a>"))
            #expect(reply.text.contains("<a href=\"%3Cb%3E%26%27x%22.txt\">&lt;b&gt;&amp;&#x27;x&quot;.txt</a>"))
            let redirect = try asyncCurlReply("\(demo.baseURL)/sub")
            #expect(redirect.statusCode == 301 && redirect.headers["location"] == "/sub/")
            let index = try asyncCurlReply("\(demo.baseURL)/withindex/")
            #expect(index.statusCode == 200 && index.text == "<h1>index</h1>\n")
        }
    }

    @Test("http 404, 405, 414, 431, 400 and 505; the server keeps serving")
    func httpErrors() throws {
        try withHTTP { demo, _ throws in
            let missing = try asyncCurlReply("\(demo.baseURL)/missing.txt")
            #expect(missing.statusCode == 404 && missing.text.contains("404 Not Found"))
            let post = try asyncCurlReply("\(demo.baseURL)/hello.txt", ["-X", "POST", "-d", "x=1"])
            #expect(post.statusCode == 405 && post.headers["allow"] == "GET, HEAD")

            let address = try demo.socketAddress()
            let longPath = "/" + String(repeating: "a", count: 9000)
            let tooLong = HTTPReply(try rawExchange(address, Array("GET \(longPath) HTTP/1.1\r\nHost: t\r\n\r\n".utf8)))
            #expect(tooLong.statusCode == 414)
            let bigHeader = try asyncCurlReply(
                "\(demo.baseURL)/hello.txt", ["-H", "X-Big: " + String(repeating: "b", count: 9000)])
            #expect(bigHeader.statusCode == 431)
            let tooMany = try asyncCurlReply("\(demo.baseURL)/hello.txt", (0..<101).flatMap { ["-H", "X-Field-\($0): v"] })
            #expect(tooMany.statusCode == 431)

            for (request, status) in DemoHTTPTests.malformedRequests {
                let reply = HTTPReply(try rawExchange(address, Array(request.utf8)))
                #expect(reply.statusCode == status, "\(request.debugDescription)")
                #expect(reply.headers["connection"] == "close", "\(request.debugDescription)")
            }
            let fine = try asyncCurlReply("\(demo.baseURL)/hello.txt")
            #expect(fine.statusCode == 200 && fine.text == "hello\n")
        }
    }

    @Test("http never serves anything outside the directory")
    func httpTraversal() throws {
        try withHTTP { demo, _ throws in
            for path in DemoHTTPTests.escapeAttempts {
                let reply = try asyncCurlReply(demo.baseURL + path)
                #expect(reply.statusCode == 404 || reply.statusCode == 400, "\(path) answered \(reply.statusCode)")
                #expect(!reply.text.contains(HTTPFixture.secret), "\(path) leaked the secret")
            }
        }
    }

    @Test("http keep-alive: curl re-uses the connection for two URLs")
    func httpKeepAlive() throws {
        try withHTTP { demo, _ throws in
            let result = try runTool([
                "curl", "-s", "-v", "--max-time", "20", "-o", "/dev/null", "-o", "/dev/null",
                "\(demo.baseURL)/hello.txt", "\(demo.baseURL)/page.html",
            ])
            #expect(result.status == 0)
            #expect(result.stderr.contains("Re-using existing connection"), "curl -v: \(result.stderr)")
            #expect(result.stderr.contains("Connection: keep-alive"))
        }
    }

    @Test("http over a Unix socket with curl --unix-socket")
    func httpUnix() throws {
        try #require(toolAvailable("curl"), "curl is missing: run `make deps`")
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        let path = fixture.base.path + "/http.sock"
        try withDemo(["http", "--mode", "async", "--unix", path, "--directory", fixture.root]) { demo throws in
            let reply = try asyncCurlReply("http://localhost/hello.txt", ["--unix-socket", path])
            #expect(reply.statusCode == 200 && reply.text == "hello\n")
        }
    }

    @Test("ten pipelined GETs of a 1 MiB file, sent with nc, are all answered")
    func httpPipelinedDownloads() throws {
        try #require(toolAvailable("nc"), "nc (netcat-openbsd) is missing: run `make deps`")
        try withHTTP { demo, fixture throws in
            let expected = try fixture.contents("large.bin")
            let requests = 10
            let request = "GET /large.bin HTTP/1.1\r\nHost: t\r\n\r\n"
            // nc -N half-closes after the requests; the server answers all of them, then closes.
            let result = try runTool(
                ["nc", "-N", "127.0.0.1", "\(demo.port)"], input: Array(String(repeating: request, count: requests).utf8))
            #expect(result.status == 0, "nc: \(result.stderr)")
            let replies = splitResponses(result.stdout)
            #expect(replies.count == requests, "got \(replies.count) whole responses in \(result.stdout.count) bytes")
            for (index, reply) in replies.enumerated() {
                #expect(reply.statusCode == 200, "response \(index + 1)")
                #expect(reply.body == expected, "body of response \(index + 1)")
            }
        }
    }

    @Test("SIGTERM during a download lets it complete, then exit 0")
    func httpSigtermDuringDownload() throws {
        try #require(toolAvailable("curl"), "curl is missing: run `make deps`")
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        // 16 MiB, more than loopback socket buffers hold, at 8 MiB/s: the server is still sending (its log
        // line for the request, written once the body is sent, is not there yet) when the signal arrives.
        let large = try Data(contentsOf: URL(fileURLWithPath: fixture.root + "/large.bin"))
        var expected = Data(capacity: 16 * large.count)
        for _ in 0..<16 { expected.append(large) }
        try expected.write(to: URL(fileURLWithPath: fixture.root + "/huge.bin"))
        let demo = try DemoProcess(["http", "--mode", "async", "--port", "0", "--directory", fixture.root])
        defer { demo.stop(SIGKILL) }
        let output = fixture.base.path + "/download.bin"
        let arguments = ["curl", "-sS", "--limit-rate", "8M", "-o", output, "\(demo.baseURL)/huge.bin"]
        let curlStatus = AsyncModeStatusBox()
        let download = try OSThread {
            let result = try? runTool(arguments)
            curlStatus.value.withLock { $0 = result?.status }
        }
        // Signal once the first bytes have arrived, so the download is surely in flight.
        #expect(
            eventually(within: .seconds(15)) {
                var info = stat()
                return stat(output, &info) == 0 && info.st_size > 0
            }, "the download started")
        #expect(!demo.standardError.contains("GET /huge.bin"), "the response is still being sent")
        demo.send(SIGTERM)
        download.join()
        #expect(curlStatus.value.withLock { $0 } == 0)
        #expect(demo.waitForExit(timeout: .seconds(20)) == 0, "stderr: \(demo.standardError)")
        let received = try Data(contentsOf: URL(fileURLWithPath: output))
        #expect(received == expected)
        #expect(demo.standardError.contains("\"GET /huge.bin HTTP/1.1\" 200 \(16 << 20)"))
    }
}
