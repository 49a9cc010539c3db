import Foundation
import Glibc
import Synchronization
import Testing

@testable import SocketServer

/// A fresh abstract name (without its leading NUL) for one test.
private func uniqueAbstractName(_ label: String) -> String {
    "socketserver-test-\(getpid())-\(label)-\(abstractNameCounter.add(1, ordering: .relaxed).newValue)"
}

private let abstractNameCounter = Atomic(0)

/// The names of the Unix sockets this machine has bound, as `/proc/net/unix` lists them (an abstract name
/// with `@` for its leading NUL).
private func boundUnixNames() -> [String] {
    // Read as bytes and decoded leniently: the table is machine-wide, and another process's abstract name may
    // be any bytes, which a strict UTF-8 read would turn into an empty list (seen in CI).
    let fd = open("/proc/net/unix", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0, errno == EINTR { continue }
        guard count > 0 else { break }
        bytes += chunk[..<count]
    }
    let table = String(decoding: bytes, as: UTF8.self)
    return table.split(separator: "\n").dropFirst().compactMap { row in
        let fields = row.split(separator: " ", omittingEmptySubsequences: true)
        return fields.count >= 8 ? String(fields[7]) : nil
    }
}

/// Replies `"from <clientAddress>\n"`, then echoes lines until end of file.
final class AddressEchoHandler: StreamRequestHandler {
    override var timeout: Duration? { .seconds(10) }
    override func handle() throws {
        try wfile.write("from \(clientAddress)\n")
        while true {
            let line = try rfile.readLine()
            if line.isEmpty { return }
            try wfile.write(line)
        }
    }
}

/// Replies `"<clientAddress> <payload>"` to a datagram.
final class AddressDatagramEchoHandler: DatagramRequestHandler {
    override func handle() throws {
        try wfile.write("\(clientAddress) ")
        try wfile.write(packet)
    }
}

@Suite("Unix socket addresses: abstract names and paths")
struct UnixAddressTests {
    @Test func abstractNamesKeepExactlyTheirBytes() throws {
        let address = try SocketAddress(unixPath: "\0name")
        #expect(address.family == .unix)
        #expect(address.path == "\0name")
        #expect(address.description == "unix:@name")
        #expect(address.length == 2 + 5, "the family, the NUL and the name: no terminator")
        #expect(address.isAbstractUnixName)
        #expect(try SocketAddress(unixPath: address.path ?? "") == address, "the path round-trips")
        #expect(try SocketAddress(unixPath: "\0a\0b").description == "unix:@a@b", "every NUL shown as @, as ss does")
        #expect(try SocketAddress(unixPath: "\0").path == "\0", "the empty abstract name")
    }

    @Test func pathsKeepTheirTerminator() throws {
        let address = try SocketAddress(unixPath: "/tmp/x.sock")
        #expect(address.path == "/tmp/x.sock")
        #expect(address.description == "unix:/tmp/x.sock")
        #expect(address.length == 2 + 11 + 1)
        #expect(!address.isAbstractUnixName)
    }

    @Test func sizesAndInvalidPaths() throws {
        #expect(throws: SocketServerError.invalidAddress("empty Unix socket path")) {
            _ = try SocketAddress(unixPath: "")
        }
        #expect(throws: SocketServerError.invalidAddress(#"Unix socket path contains NUL: "/tmp/a\0b""#)) {
            _ = try SocketAddress(unixPath: "/tmp/a\0b")
        }
        let longestPath = "/" + String(repeating: "p", count: 106)
        #expect(try SocketAddress(unixPath: longestPath).path == longestPath)
        #expect(throws: SocketServerError.pathTooLong(longestPath + "p")) { _ = try SocketAddress(unixPath: longestPath + "p") }
        let longestName = "\0" + String(repeating: "n", count: 107)
        #expect(try SocketAddress(unixPath: longestName).path == longestName, "an abstract name may fill sun_path")
        #expect(throws: SocketServerError.pathTooLong(longestName + "n")) { _ = try SocketAddress(unixPath: longestName + "n") }
    }

    @Test func anUnboundSocketHasAnEmptyPath() throws {
        let socket = try Socket(family: .unix, type: .datagram)
        defer { socket.close() }
        let local = try socket.localAddress
        #expect(local.family == .unix)
        #expect(local.path == "")
        #expect(local.description == "unix:")
        #expect(!local.isAbstractUnixName)
    }
}

@Suite(
    "Abstract Unix socket servers, with socat clients", .serialized,
    .enabled(if: toolAvailable("socat"), "socat is installed by make deps"))
struct AbstractUnixSocketTests {
    @Test func streamServerOnAnAbstractNameServesSocat() throws {
        let name = uniqueAbstractName("stream")
        let before = ResourceSnapshot()
        let server = try UnixStreamServer(try SocketAddress(unixPath: "\0" + name), handler: AddressEchoHandler.self)
        #expect(server.serverAddress.path == "\0" + name)
        #expect(server.serverAddress.description == "unix:@" + name)
        #expect(try server.socket.localAddress == server.serverAddress, "bound exactly as given")
        #expect(boundUnixNames().contains("@" + name), "listed without a trailing NUL (@)")
        try withServing(server) { server throws in
            let unnamed = try runTool(["socat", "-", "ABSTRACT-CONNECT:\(name)"], input: Array("hello\nagain\n".utf8))
            #expect(unnamed.status == 0, "socat: \(unnamed.stderr)")
            #expect(unnamed.output == "from unix:\nhello\nagain\n", "an unbound client has an empty path")
            let named = try runTool(
                ["socat", "-", "ABSTRACT-CONNECT:\(name),bind=\(name)-client"], input: Array("hi\n".utf8))
            #expect(named.status == 0, "socat: \(named.stderr)")
            #expect(named.output == "from unix:@\(name)-client\nhi\n", "a client bound to an abstract name")
        }
        #expect(!boundUnixNames().contains("@" + name), "the name goes with the socket")
        before.expectNothingLeft()
    }

    @Test func datagramServerOnAnAbstractNameAnswersSocat() throws {
        let name = uniqueAbstractName("dgram")
        let server = try UnixDatagramServer(
            try SocketAddress(unixPath: "\0" + name), handler: AddressDatagramEchoHandler.self)
        #expect(server.serverAddress.path == "\0" + name)
        try withServing(server) { _ throws in
            let result = try runTool(
                ["socat", "-t", "2", "-", "ABSTRACT-SENDTO:\(name),bind=\(name)-client"], input: Array("ping".utf8))
            #expect(result.status == 0, "socat: \(result.stderr)")
            #expect(result.output == "unix:@\(name)-client ping")
        }
    }

    @Test func aLiveAbstractNameIsNotTakenOverAndAClosedOneIsFree() throws {
        let address = try SocketAddress(unixPath: "\0" + uniqueAbstractName("reuse"))
        let first = try UnixStreamServer(address, handler: AddressEchoHandler.self)
        #expect(throws: SocketError(operation: "bind", code: EADDRINUSE)) {
            _ = try UnixStreamServer(address, handler: AddressEchoHandler.self)
        }
        first.serverClose()
        let second = try UnixStreamServer(address, handler: AddressEchoHandler.self)
        defer { second.serverClose() }
        try withServing(second) { server throws in
            let client = try TestClient(connectingTo: server.serverAddress)
            defer { client.close() }
            #expect(try client.readLine() == "from unix:\n")
        }
    }

    /// A path server next to an abstract one with the same spelling: closing the abstract server must not
    /// remove the file (its path, cut at the NUL as a C string, would be empty, never the file's).
    @Test func closingAnAbstractServerLeavesFilesAlone() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let filePath = directory.path + "/server.sock"
        let fileServer = try UnixStreamServer(try SocketAddress(unixPath: filePath), handler: AddressEchoHandler.self)
        defer { fileServer.serverClose() }
        let abstractServer = try UnixStreamServer(
            try SocketAddress(unixPath: "\0" + filePath), handler: AddressEchoHandler.self)
        #expect(abstractServer.serverAddress.description == "unix:@" + filePath)
        abstractServer.serverClose()
        #expect(access(filePath, F_OK) == 0, "the file server's socket file is still there")
        let result = try runTool(["socat", "-", "UNIX-CONNECT:\(filePath)"], input: [])
        #expect(result.status == 0, "the file server still accepts: \(result.stderr)")
    }
}
