import Foundation
import Glibc
import Testing

@testable import SocketServer

/// `curl -s -i --path-as-is` (no `..` clean-up on the client side) for one URL.
private func curlReply(_ url: String, _ options: [String] = []) throws -> HTTPReply {
    let result = try runTool(["curl", "-s", "-i", "--path-as-is", "--max-time", "20"] + options + [url])
    #expect(result.status == 0, "curl \(url): status \(result.status), \(result.stderr)")
    return HTTPReply(result.stdout)
}

@Suite("socketserver-demo http, driven by curl and raw sockets", .serialized)
struct DemoHTTPTests {
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

    @Test("GET a file: status, Content-Type, Content-Length, Last-Modified and body", arguments: httpModes)
    func getFile(mode: String) throws {
        try withServer(mode: mode) { demo, fixture throws in
            let text = try curlReply("\(demo.baseURL)/hello.txt")
            #expect(text.statusCode == 200)
            #expect(text.headers["content-type"] == "text/plain")
            #expect(text.headers["content-length"] == "6")
            #expect(text.headers["last-modified"]?.hasSuffix(" GMT") == true)
            #expect(text.text == "hello\n")

            let html = try curlReply("\(demo.baseURL)/page.html")
            #expect(html.headers["content-type"] == "text/html")
            #expect(html.text == "<p>page</p>\n")

            let spaced = try curlReply("\(demo.baseURL)/with%20space.txt?query=ignored")
            #expect(spaced.statusCode == 200 && spaced.text == "spaced\n")

            let large = try curlReply("\(demo.baseURL)/large.bin")
            #expect(large.headers["content-type"] == "application/octet-stream")
            #expect(large.headers["content-length"] == "\(1 << 20)")
            #expect(large.body == (try fixture.contents("large.bin")))
        }
    }

    @Test("HEAD: the same head as GET, no body", arguments: httpModes)
    func head(mode: String) throws {
        try withServer(mode: mode) { demo, _ throws in
            let result = try runTool(["curl", "-s", "-I", "--max-time", "20", "\(demo.baseURL)/hello.txt"])
            let reply = HTTPReply(result.stdout)
            #expect(reply.statusCode == 200)
            #expect(reply.headers["content-length"] == "6")
            #expect(reply.body.isEmpty)
            // A raw HEAD shows that nothing follows the head on the wire either.
            let raw = try rawExchange(
                try demo.socketAddress(),
                Array("HEAD /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8))
            #expect(HTTPReply(raw).statusCode == 200)
            #expect(HTTPReply(raw).body.isEmpty)
        }
    }

    @Test("directory listing: sorted, links percent-encoded, names HTML-escaped", arguments: httpModes)
    func listing(mode: String) throws {
        try withServer(mode: mode) { demo, _ throws in
            let reply = try curlReply("\(demo.baseURL)/")
            #expect(reply.statusCode == 200)
            #expect(reply.headers["content-type"] == "text/html; charset=utf-8")
            #expect(reply.headers["content-length"] == "\(reply.body.count)")
            let page = reply.text
            #expect(page.contains("Directory listing for /"))
            #expect(page.contains("<a href=\"%3Cb%3E%26%27x%22.txt\">&lt;b&gt;&amp;&#x27;x&quot;.txt</a>"))
            #expect(!page.contains("<b>"), "no file name reaches the page unescaped")
            #expect(page.contains("<a href=\"sub/\">sub/</a>"))
            #expect(page.contains("<a href=\"with%20space.txt\">with space.txt</a>"))
            #expect(page.contains("escape@"))
            let names = ["hello.txt", "large.bin", "page.html", "sub/", "with space.txt"]
            let positions = names.compactMap { page.range(of: ">\($0)<")?.lowerBound }
            #expect(positions.count == names.count && positions == positions.sorted(), "entries are sorted")

            let odd = try curlReply("\(demo.baseURL)/%3Cb%3E%26%27x%22.txt")
            #expect(odd.statusCode == 200 && odd.text == "odd\n", "the listing's links work")

            let sub = try curlReply("\(demo.baseURL)/sub/")
            #expect(sub.text.contains("Directory listing for /sub/"))
            #expect(sub.text.contains("<a href=\"inner.txt\">inner.txt</a>"))
        }
    }

    @Test("a directory without its slash redirects; index.html is served for its directory", arguments: httpModes)
    func redirectAndIndex(mode: String) throws {
        try withServer(mode: mode) { demo, _ throws in
            let redirect = try curlReply("\(demo.baseURL)/sub?x=1")
            #expect(redirect.statusCode == 301)
            #expect(redirect.headers["location"] == "/sub/?x=1")
            let protocolRelative = try curlReply("\(demo.baseURL)//sub")
            #expect(protocolRelative.statusCode == 301)
            #expect(protocolRelative.headers["location"] == "/sub/", "never a `//host` redirect to another site")
            let index = try curlReply("\(demo.baseURL)/withindex/")
            #expect(index.statusCode == 200)
            #expect(index.headers["content-type"] == "text/html")
            #expect(index.text == "<h1>index</h1>\n")
        }
    }

    @Test("404, 405 and their HTML bodies", arguments: httpModes)
    func errors(mode: String) throws {
        try withServer(mode: mode) { demo, _ throws in
            let missing = try curlReply("\(demo.baseURL)/missing.txt")
            #expect(missing.statusCode == 404)
            #expect(missing.text.contains("404 Not Found"))
            #expect(missing.headers["content-length"] == "\(missing.body.count)")
            let fileWithSlash = try curlReply("\(demo.baseURL)/hello.txt/")
            #expect(fileWithSlash.statusCode == 404)

            let post = try curlReply("\(demo.baseURL)/hello.txt", ["-X", "POST", "-d", "x=1"])
            #expect(post.statusCode == 405)
            #expect(post.headers["allow"] == "GET, HEAD")
            #expect(post.text.contains("405 Method Not Allowed"))
        }
    }

    /// Targets that try to leave the served directory; each must get 404 or 400 and never the secret.
    static let escapeAttempts = [
        "/../outside/secret.txt", "/%2e%2e/outside/secret.txt", "/%2E%2E/outside/secret.txt",
        "/sub/..%2f..%2foutside/secret.txt", "/%2e%2e%2foutside%2fsecret.txt", "/sub/../../outside/secret.txt",
        "/./../outside/secret.txt", "/escape", "/relative-escape", "/outdir/secret.txt", "/outdir/",
        "//../outside/secret.txt", "/..", "/%2e%2e", "/hello.txt%00.html",
    ]

    @Test("nothing outside the directory is ever served (one server, every attempt)", arguments: ["sync", "event"])
    func traversal(mode: String) throws {
        try withServer(mode: mode) { demo, _ throws in
            for path in Self.escapeAttempts {
                let reply = try curlReply(demo.baseURL + path)
                #expect(reply.statusCode == 404 || reply.statusCode == 400, "\(path) answered \(reply.statusCode)")
                #expect(!reply.text.contains(HTTPFixture.secret), "\(path) leaked the secret")
                // The same through a raw socket in absolute form, which no client normalises.
                let raw = try rawExchange(
                    try demo.socketAddress(),
                    Array("GET http://localhost\(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8))
                let rawReply = HTTPReply(raw)
                #expect(rawReply.statusCode == 404 || rawReply.statusCode == 400, "\(path) (absolute form)")
                #expect(!rawReply.text.contains(HTTPFixture.secret), "\(path) (absolute form) leaked the secret")
            }
        }
    }

    @Test("a symbolic link that stays inside the directory is served")
    func insideLink() throws {
        try withServer(mode: "sync") { demo, _ throws in
            let reply = try curlReply("\(demo.baseURL)/inside")
            #expect(reply.statusCode == 200 && reply.text == "hello\n")
        }
    }

    @Test("414 for a request line over 8 KiB, 431 for large headers; the server keeps serving", arguments: httpModes)
    func limits(mode: String) throws {
        try withServer(mode: mode) { demo, _ throws in
            let address = try demo.socketAddress()
            let longPath = "/" + String(repeating: "a", count: 9000)
            let tooLong = HTTPReply(try rawExchange(address, Array("GET \(longPath) HTTP/1.1\r\nHost: t\r\n\r\n".utf8)))
            #expect(tooLong.statusCode == 414)
            #expect(tooLong.text.contains("414"))

            let bigHeader = try curlReply(
                "\(demo.baseURL)/hello.txt", ["-H", "X-Big: " + String(repeating: "b", count: 9000)])
            #expect(bigHeader.statusCode == 431)
            #expect(bigHeader.text.contains("431"))

            let manyHeaders = (0..<101).flatMap { ["-H", "X-Field-\($0): v"] }
            let tooMany = try curlReply("\(demo.baseURL)/hello.txt", manyHeaders)
            #expect(tooMany.statusCode == 431)

            let fine = try curlReply("\(demo.baseURL)/hello.txt")
            #expect(fine.statusCode == 200 && fine.text == "hello\n")
        }
    }

    /// Malformed request heads and the status each must get.
    static let malformedRequests: [(String, Int)] = [
        ("GARBAGE\r\n\r\n", 400), ("GET /hello.txt\r\n\r\n", 400),
        ("GET  /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", 400), ("GET /hello.txt HTTP/1.1\r\n\r\n", 400),
        ("GET /hello.txt HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n", 400),
        ("GET /hello.txt HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", 400), ("GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        ("GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n", 400),
        ("GET hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", 400), ("GET /hello.txt HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ]

    @Test("malformed requests get 400 or 505 with a body, and close", arguments: ["sync", "event"])
    func malformed(mode: String) throws {
        try withServer(mode: mode) { demo, _ throws in
            for (request, status) in Self.malformedRequests {
                let reply = HTTPReply(try rawExchange(try demo.socketAddress(), Array(request.utf8)))
                #expect(reply.statusCode == status, "\(request.debugDescription)")
                #expect(reply.text.contains("\(status)"), "\(request.debugDescription)")
                #expect(reply.headers["connection"] == "close", "\(request.debugDescription)")
            }
        }
    }

    @Test("keep-alive: curl re-uses the connection for two URLs, in every mode (blocking modes park it)", arguments: httpModes)
    func keepAlive(mode: String) throws {
        try withServer(mode: mode) { demo, _ throws in
            let result = try runTool([
                "curl", "-s", "-v", "--max-time", "20", "-o", "/dev/null", "-o", "/dev/null",
                "\(demo.baseURL)/hello.txt", "\(demo.baseURL)/page.html",
            ])
            #expect(result.status == 0)
            let reused = result.stderr.contains("Re-using existing connection")
            #expect(reused, "curl -v: \(result.stderr)")
            #expect(result.stderr.contains("Connection: keep-alive"))
        }
    }

    @Test("Connection: close and HTTP/1.0 close the connection; HTTP/1.0 keep-alive is honoured", arguments: httpConcurrentModes)
    func connectionControl(mode: String) throws {
        try withServer(mode: mode) { demo, _ throws in
            let urls = ["\(demo.baseURL)/hello.txt", "\(demo.baseURL)/page.html"]
            let close = try runTool(
                ["curl", "-s", "-v", "--max-time", "20", "-H", "Connection: close", "-o", "/dev/null", "-o", "/dev/null"]
                    + urls)
            #expect(!close.stderr.contains("Re-using existing connection"))
            #expect(close.stderr.contains("Connection: close"))

            let http10 = try runTool(["curl", "-s", "-v", "-0", "--max-time", "20", "-o", "/dev/null", "-o", "/dev/null"] + urls)
            #expect(!http10.stderr.contains("Re-using existing connection"))

            // Two HTTP/1.0 requests pipelined on one connection, the first asking to keep it open.
            let pipelined = "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /page.html HTTP/1.0\r\n\r\n"
            let raw = String(decoding: try rawExchange(try demo.socketAddress(), Array(pipelined.utf8)), as: UTF8.self)
            #expect(raw.components(separatedBy: "HTTP/1.1 200 OK").count == 3, "\(raw)")
            #expect(raw.contains("Connection: keep-alive"))
            #expect(raw.hasSuffix("<p>page</p>\n"))
        }
    }

    @Test("a client that stops mid-request gets 408 after --timeout and costs only its connection", arguments: httpModes)
    func slowClient(mode: String) throws {
        try withServer(mode: mode, ["--timeout", "0.5"]) { demo, _ throws in
            let address = try demo.socketAddress()
            let slow = try TestClient(connectingTo: address, timeout: .seconds(15))
            defer { slow.close() }
            try slow.send("GET /hello.txt HTTP/1.1\r\n")
            let reply = HTTPReply(Array(try slow.readToEnd().utf8))
            // In event mode the idle timeout answers it too.
            #expect(reply.statusCode == 408)
            #expect(reply.headers["connection"] == "close")
            let next = try curlReply("\(demo.baseURL)/hello.txt")
            #expect(next.statusCode == 200)
        }
    }

    @Test("a slowloris that keeps sending header lines gets 408 once --timeout has passed since its head began", arguments: httpModes + ["async"])
    func slowlorisGetsRequestTimeout(mode: String) throws {
        try withServer(mode: mode, ["--timeout", "0.5"]) { demo, _ throws in
            let slow = try TestClient(connectingTo: try demo.socketAddress(), timeout: .seconds(15))
            defer { slow.close() }
            try slow.send("GET /hello.txt HTTP/1.1\r\nHost: x\r\n")
            // One header line every 100 ms keeps every idle timer alive; stop once the server has answered.
            // Bounded: 300 lines (30 s), far past the 0.5 s the head may take.
            var sent = 0
            while sent < 300 {
                var ready = pollfd(fd: slow.socket.fileDescriptor, events: Int16(POLLIN), revents: 0)
                if poll(&ready, 1, 0) > 0 { break }
                try slow.send("X-Slow-\(sent): y\r\n")
                sent += 1
                pause(.milliseconds(100))
            }
            let reply = HTTPReply(Array(try slow.readToEnd().utf8))
            #expect(reply.statusCode == 408, "after \(sent) header lines")
            #expect(reply.headers["connection"] == "close")
            #expect(sent < 300, "the server answered before the client gave up")
            #expect(try curlReply("\(demo.baseURL)/hello.txt").statusCode == 200)
        }
    }

    @Test("HTTP over a Unix socket with curl --unix-socket", arguments: httpModes)
    func unixSocket(mode: String) throws {
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        let path = fixture.base.path + "/http.sock"
        try withDemo(["http", "--mode", mode, "--unix", path, "--directory", fixture.root]) { demo throws in
            #expect(demo.listeningLine == "listening on unix:\(path)")
            let reply = try curlReply("http://localhost/hello.txt", ["--unix-socket", path])
            #expect(reply.statusCode == 200 && reply.text == "hello\n")
        }
    }

    @Test("IPv6: GET over [::1]", .enabled(if: ipv6LoopbackAvailable, "::1 cannot be bound on this machine"))
    func ipv6() throws {
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        try withDemo(["http", "--host", "::1", "--port", "0", "--directory", fixture.root]) { demo throws in
            #expect(demo.address.hasPrefix("[::1]:"))
            let reply = try curlReply("\(demo.baseURL)/hello.txt", ["-g"])
            #expect(reply.statusCode == 200 && reply.text == "hello\n")
        }
    }

    @Test("each request is logged at info level with its status")
    func requestLog() throws {
        let fixture = try HTTPFixture()
        defer { fixture.cleanup() }
        let demo = try DemoProcess(["http", "--port", "0", "--directory", fixture.root])
        _ = try curlReply("\(demo.baseURL)/hello.txt")
        _ = try curlReply("\(demo.baseURL)/missing")
        #expect(demo.stop() == 0)
        #expect(demo.standardError.contains("\"GET /hello.txt HTTP/1.1\" 200 6"))
        #expect(demo.standardError.contains("\"GET /missing HTTP/1.1\" 404"))

        let quiet = try DemoProcess(["http", "--port", "0", "--directory", fixture.root, "--log-level", "warning"])
        _ = try curlReply("\(quiet.baseURL)/hello.txt")
        #expect(quiet.stop() == 0)
        #expect(!quiet.standardError.contains("GET /hello.txt"))
    }
}
