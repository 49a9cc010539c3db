import Glibc

/// Finds or builds everything the run needs besides the harness itself: the demo, the C peers (compiled
/// with cc on first use), the SwiftNIO peer (a release build of Perf/NIOPeer on first use) and python3.
struct PeerTools: Sendable {
    let root: String
    var demo: String?
    var cPeersBuilt = false
    var mallocPreload: String?
    var nioPeer: String?
    var nioProblem: String?
    var python: String?

    var outDirectory: String { "\(root)/Perf/out" }
    var cBinDirectory: String { "\(root)/Perf/out/bin" }
    var logDirectory: String { "\(root)/Perf/out/logs" }
    var pythonScript: String { "\(root)/Perf/Peers/python/echo_server.py" }

    /// `demoPath` nil: the demo next to the harness (both built by `swift build --package-path Perf`), else the
    /// root package's release build.
    init(root: String, demoPath: String?, harnessDirectory: String, buildNIO: Bool, progress: Progress) {
        self.root = root
        for directory in [outDirectory, cBinDirectory, logDirectory, "\(outDirectory)/tmp"] {
            mkdir(directory, 0o755)
        }
        let demoCandidate = demoPath
            ?? ["\(harnessDirectory)/socketserver-demo", "\(root)/.build/release/socketserver-demo"]
            .first { access($0, X_OK) == 0 } ?? "\(harnessDirectory)/socketserver-demo"
        demo = access(demoCandidate, X_OK) == 0 ? demoCandidate : nil
        if demo == nil { progress.note("socketserver-demo not found at \(demoCandidate): SocketServer modes are skipped") }
        cPeersBuilt = buildCPeers(progress: progress)
        mallocPreload = cPeersBuilt ? "\(cBinDirectory)/malloc_count.so" : nil
        python = Self.which("python3")
        if buildNIO { buildNIOPeer(progress: progress) } else { nioProblem = "skipped (--no-nio)" }
    }

    /// Compiles each C peer when its binary is missing or older than its source.
    private func buildCPeers(progress: Progress) -> Bool {
        let sources = "\(root)/Perf/Peers/c"
        let peers = ["echo_bufferevent", "echo_raw", "echo_sequential", "udp_echo"]
        var ok = true
        for peer in peers {
            let binary = "\(cBinDirectory)/\(peer)"
            guard Self.isOutOfDate(binary, sources: ["\(sources)/\(peer).c", "\(sources)/peer_common.h"]) else { continue }
            progress.note("compiling C peer \(peer)")
            ok = run(["cc", "-O2", "-Wall", "-o", binary, "\(sources)/\(peer).c", "-levent_core"], log: "cc-\(peer)") && ok
        }
        let preload = "\(cBinDirectory)/malloc_count.so"
        if Self.isOutOfDate(preload, sources: ["\(sources)/malloc_count.c"]) {
            progress.note("compiling allocation counter malloc_count.so")
            ok = run(["cc", "-O2", "-shared", "-fPIC", "-o", preload, "\(sources)/malloc_count.c"], log: "cc-malloc") && ok
        }
        if !ok { progress.note("C peers failed to build (is libevent-dev installed? `make deps`); see \(logDirectory)") }
        return ok
    }

    /// Builds the SwiftNIO peer in release mode unless its binary is newer than its sources.
    private mutating func buildNIOPeer(progress: Progress) {
        let package = "\(root)/Perf/NIOPeer"
        let binary = "\(package)/.build/release/nio-echo-peer"
        if Self.isOutOfDate(binary, sources: ["\(package)/Package.swift", "\(package)/Sources/NIOEchoPeer/main.swift"]) {
            progress.note("building the SwiftNIO peer (release, first use: 2-4 minutes; log in \(logDirectory)/nio-build.log)")
            let built = run(
                ["swift", "build", "-c", "release", "--package-path", package, "--scratch-path", "\(package)/.build"],
                log: "nio-build")
            guard built else {
                nioProblem = "SwiftNIO peer failed to build (see Perf/out/logs/nio-build.log)"
                progress.note(nioProblem ?? "")
                return
            }
        }
        nioPeer = binary
    }

    /// Runs a build command to completion, output in the log directory; true on exit status 0.
    private func run(_ arguments: [String], log: String) -> Bool {
        guard let child = try? ChildProcess(
            arguments: arguments, stdoutPath: "\(logDirectory)/\(log).log", stderrPath: "\(logDirectory)/\(log).log")
        else { return false }
        return child.wait(timeout: 1800) == 0
    }

    static func isOutOfDate(_ target: String, sources: [String]) -> Bool {
        var targetInfo = stat()
        guard stat(target, &targetInfo) == 0 else { return true }
        return sources.contains { source in
            var sourceInfo = stat()
            return stat(source, &sourceInfo) == 0 && sourceInfo.st_mtim.tv_sec >= targetInfo.st_mtim.tv_sec
        }
    }

    static func which(_ name: String) -> String? {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") where access("\(directory)/\(name)", X_OK) == 0 {
            return "\(directory)/\(name)"
        }
        return nil
    }
}
