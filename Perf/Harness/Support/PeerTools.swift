import Foundation
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
    var nginx: String?
    var valgrind: String?
    var strace: String?
    /// The TLS workloads' certificate, generated at the start of every run; nil without openssl.
    var tls: TLSFiles?

    var outDirectory: String { "\(root)/Perf/out" }
    var cBinDirectory: String { "\(root)/Perf/out/bin" }
    var logDirectory: String { "\(root)/Perf/out/logs" }
    var pythonScript: String { "\(root)/Perf/Peers/python/echo_server.py" }
    /// The HTTP workloads' document root: `1k.bin` and `1m.bin` (made by `makeDocumentRoot`).
    var documentRoot: String { "\(root)/Perf/out/www" }

    /// Writes nginx's configuration for `root` on 127.0.0.1:`port` and returns its prefix directory and file:
    /// one process (`master_process off`, so the one worker is the process the harness measures), `sendfile on`,
    /// keep-alive without a request limit, the access log to a file (the demo logs each request to its stderr
    /// file), temporary paths under Perf/out/nginx.
    var nginxConfiguration: @Sendable (_ documentRoot: String, _ port: Int) -> (prefix: String, file: String) {
        let prefix = "\(outDirectory)/nginx"
        let logs = logDirectory
        return { documentRoot, port in
            NginxConfiguration.write(
                prefix: prefix, accessLog: "\(logs)/nginx-access.log", documentRoot: documentRoot, port: port)
        }
    }

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
        python = Self.which("python3").map { resolvedPython($0) }
        nginx = Self.which("nginx") ?? (access("/usr/sbin/nginx", X_OK) == 0 ? "/usr/sbin/nginx" : nil)
        valgrind = Self.which("valgrind")
        strace = Self.which("strace")
        makeDocumentRoot()
        tls = TLSFiles.make(outDirectory: outDirectory, documentRoot: documentRoot, progress: progress)
        if buildNIO { buildNIOPeer(progress: progress) } else { nioProblem = "skipped (--no-nio)" }
    }

    /// Compiles each C peer when its binary is missing or older than its source.
    private func buildCPeers(progress: Progress) -> Bool {
        let sources = "\(root)/Perf/Peers/c"
        var ok = true
        for peer in ServerCatalog.cPrograms {
            let binary = "\(cBinDirectory)/\(peer)"
            guard Self.isOutOfDate(binary, sources: ["\(sources)/\(peer).c", "\(sources)/peer_common.h"]) else { continue }
            progress.note("compiling C peer \(peer)")
            ok = run(["cc", "-O2", "-Wall", "-o", binary, "\(sources)/\(peer).c", "-levent_core", "-lpthread"], log: "cc-\(peer)")
                && ok
        }
        let preload = "\(cBinDirectory)/malloc_count.so"
        if Self.isOutOfDate(preload, sources: ["\(sources)/malloc_count.c"]) {
            progress.note("compiling allocation counter malloc_count.so")
            ok = run(["cc", "-O2", "-shared", "-fPIC", "-o", preload, "\(sources)/malloc_count.c"], log: "cc-malloc") && ok
        }
        if !ok { progress.note("C peers failed to build (is libevent-dev installed? `make deps`); see \(logDirectory)") }
        return ok
    }

    /// A copy of `program` without its DWARF sections, for valgrind: valgrind 3.19 (Debian 12) gives up on the
    /// DWARF 5 forms the Swift toolchain emits ("unhandled dwarf2 abbrev form"). The symbol table stays, so
    /// callgrind_annotate still names functions. Programs outside the package (python3) are used as they are.
    func valgrindCopy(of program: String) -> String {
        guard program.hasPrefix(root), let objcopy = Self.which("objcopy") else { return program }
        let directory = "\(outDirectory)/valgrind-bin"
        mkdir(directory, 0o755)
        let name = program.split(separator: "/").last.map(String.init) ?? "program"
        let copy = "\(directory)/\(name)"
        if Self.isOutOfDate(copy, sources: [program]) {
            guard run([objcopy, "--strip-debug", program, copy], log: "objcopy-\(name)") else { return program }
        }
        return copy
    }

    /// The interpreter itself (`sys.executable`) rather than a wrapper in front of it (pyenv's shim is a shell
    /// script that execs it: valgrind, which does not follow exec here, would measure the script).
    private func resolvedPython(_ python: String) -> String {
        let path = "\(outDirectory)/tmp/python-executable.txt"
        guard let child = try? ChildProcess(
            arguments: [python, "-c", "import sys; print(sys.executable)"], stdoutPath: path, stderrPath: "/dev/null"),
            child.wait(timeout: 20) == 0,
            let text = readText(path)?.trimmingCharacters(in: .whitespacesAndNewlines), access(text, X_OK) == 0
        else { return python }
        return text
    }

    /// The HTTP workloads' files: 1 KiB and 1 MiB of bytes (rewritten only when missing or of another size).
    private func makeDocumentRoot() {
        mkdir(documentRoot, 0o755)
        for (name, size) in [("1k.bin", 1024), ("1m.bin", 1 << 20)] {
            let path = "\(documentRoot)/\(name)"
            var info = stat()
            if stat(path, &info) == 0 && Int(info.st_size) == size { continue }
            let bytes = [UInt8](repeating: UInt8(ascii: "s"), count: size)
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { continue }
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
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
