import Foundation
import Glibc
import Testing

@testable import SocketServer

// The environment side of socket activation and sd_notify, in this process (the descriptor side runs under the
// real launcher in DemoSocketActivationTests).

@Suite("Socket activation environment and sd_notify", .serialized)
struct SocketActivationTests {
    @Test("listeners meant for another pid are not taken, and the variables are unset")
    func otherProcess() throws {
        setenv("LISTEN_PID", "\(getpid() + 1)", 1)
        setenv("LISTEN_FDS", "1", 1)
        setenv("LISTEN_FDNAMES", "web", 1)
        #expect(try SocketActivation.listeners().isEmpty)
        #expect(getenv("LISTEN_PID") == nil && getenv("LISTEN_FDS") == nil && getenv("LISTEN_FDNAMES") == nil)
        #expect(try SocketActivation.listeners().isEmpty, "nothing set: nothing inherited")
    }

    @Test("a malformed LISTEN_FDS for this pid is a clear error")
    func malformedCount() throws {
        setenv("LISTEN_PID", "\(getpid())", 1)
        setenv("LISTEN_FDS", "many", 1)
        #expect(throws: SocketServerError.invalidListener("LISTEN_FDS is not a count of descriptors: many")) {
            _ = try SocketActivation.listeners()
        }
        #expect(getenv("LISTEN_FDS") == nil)
    }

    @Test("READY=1 and STOPPING=1 reach NOTIFY_SOCKET, a path or an abstract name")
    func notify() throws {
        try notify(abstract: false)
        try notify(abstract: true)
    }

    private func notify(abstract: Bool) throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let name = abstract ? "\0socketserver-notify-\(getpid())" : directory.path + "/notify"
        let receiver = try Socket(family: .unix, type: .datagram)
        defer { receiver.close() }
        receiver.timeout = .seconds(10)
        try receiver.bind(to: try SocketAddress(unixPath: name))
        setenv("NOTIFY_SOCKET", abstract ? "@" + name.dropFirst() : name, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        let notifier = ServiceNotifier()
        #expect(notifier.isActive)
        notifier.ready()
        #expect(String(decoding: try receiver.receiveFrom(maxLength: 256).0, as: UTF8.self) == "READY=1")
        notifier.stopping()
        #expect(String(decoding: try receiver.receiveFrom(maxLength: 256).0, as: UTF8.self) == "STOPPING=1")
        notifier.status("draining\n3 left")
        #expect(String(decoding: try receiver.receiveFrom(maxLength: 256).0, as: UTF8.self) == "STATUS=draining 3 left")
    }

    @Test("without NOTIFY_SOCKET or a readiness pipe the notifier does nothing")
    func inactive() {
        unsetenv("NOTIFY_SOCKET")
        let notifier = ServiceNotifier()
        #expect(!notifier.isActive)
        notifier.ready()
        notifier.stopping()
    }
}
