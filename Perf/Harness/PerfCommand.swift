import ArgumentParser
import Dispatch
import Foundation
import Glibc

/// `perf`: runs SocketServer's concurrency modes and the peers through the same workloads, side by side.
@main
struct PerfCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perf",
        abstract: "Compare SocketServer's concurrency modes with C libevent, SwiftNIO and Python socketserver peers.",
        discussion: """
            Servers run pinned to one core, the load generator (this binary, `perf load`) to another; each \
            workload runs every server in alternating short slices (A B C … A B C …) and reports medians and \
            the median ratio between servers with its spread. Results go to the terminal and to \
            Perf/results/latest.{json,md,svg}.

            WORKLOADS: \(Workload.all.map { "\($0.id) (\($0.title))" }.joined(separator: "; ")).

            MODES (socketserver-demo --mode, skipped with a note when the demo lacks one): \
            \(ServerCatalog.modeNames.joined(separator: ", ")).

            PEERS: c-bufferevent (C, libevent bufferevents), c-raw (C, raw libevent events, own buffers), \
            c-sequential (C, one connection at a time), c-threads (C, a thread per \
            connection or datagram), c-fork (C, a process per connection or datagram), c-udp (C, libevent UDP echo), nio (SwiftNIO, one \
            loop; Perf/NIOPeer, built on first use), nginx (the HTTP workloads; one worker, sendfile on), py-sync, py-threading, py-forking (Python \
            socketserver).

            COSTS: instructions per request (valgrind --tool=callgrind) and system calls per request (strace -f \
            -c) for TCP echo, UDP echo and connect per request, each the long run minus the short run over the extra \
            requests, so start-up and shutdown cancel out. They count the same on a busy machine as on a quiet one: \
            decide with them; the rates are paired ratios, noisy on a shared machine.

            PROFILES: quick (3 rounds of 0.25 s slices, 2 at 1,000 connections, then the costs; about 15 minutes), full (7 rounds \
            of 1 s slices, 5 at 1,000 connections, then the costs; about 30 minutes).
            """,
        subcommands: [LoadCommand.self]
    )

    @Option(help: "quick or full.") var profile: String = "quick"
    @Option(help: "Comma-separated workload ids (default: all; none: only the costs; tls: the TLS workloads).") var workloads: String?
    @Option(help: "Comma-separated server ids, modes and peers (default: all).") var servers: String?
    @Option(help: "Override the profile's rounds.") var rounds: Int?
    @Option(help: "Override the profile's slice seconds.") var slice: Double?
    @Option(help: "Path of socketserver-demo (default: next to this binary, else .build/release/socketserver-demo).")
    var demo: String?
    @Option(help: "SocketServer's package root (default: the current directory, or the one holding this binary's Perf/).")
    var root: String?
    @Option(help: "Where to write latest.{json,md,svg} (default Perf/results).") var output: String?
    @Flag(help: "Do not build or run the SwiftNIO peer.") var noNio = false
    @Option(help: "Comma-separated cost workloads (instructions and syscalls per request under callgrind and strace): \(CostWorkload.all.map(\.id).joined(separator: ", ")), all (default) or none.")
    var costs: String = "all"

    func validate() throws {
        guard Profile.named(profile) != nil else { throw ValidationError("--profile must be quick or full") }
        let costIDs = Set(CostWorkload.all.map(\.id))
        for id in costs.split(separator: ",") where !costIDs.contains(String(id)) && id != "all" && id != "none" {
            throw ValidationError("unknown cost workload \(id); known: \(costIDs.sorted().joined(separator: ", ")), all, none")
        }
        if let workloads {
            let known = Set(Workload.all.map(\.id))
            for id in workloads.split(separator: ",") where !known.contains(String(id)) && id != "none" && id != "tls" {
                throw ValidationError("unknown workload \(id); known: \(known.sorted().joined(separator: ", "))")
            }
        }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        raiseOpenFileLimit()
        let interrupt = Self.cleanUpOnInterrupt()
        defer { interrupt.cancel() }
        let progress = Progress()
        let harness = Self.executablePath()
        let root = self.root ?? Self.packageRoot(harness: harness)
        guard FileManager.default.fileExists(atPath: "\(root)/Perf/Peers") else {
            throw HarnessError("run from the package root (or pass --root): \(root)/Perf/Peers not found")
        }
        guard var profile = Profile.named(profile) else { return }
        if rounds != nil || slice != nil {
            profile = Profile(
                name: profile.name, rounds: rounds ?? profile.rounds, warmupSeconds: profile.warmupSeconds,
                sliceSeconds: slice ?? profile.sliceSeconds, quietRounds: profile.quietRounds,
                heavyRounds: rounds ?? profile.heavyRounds, settleSeconds: profile.settleSeconds)
        }
        let pinning = CorePinning.detect()
        progress.note("pinning: \(pinning.description)")
        let tools = PeerTools(
            root: root, demoPath: demo, harnessDirectory: (harness as NSString).deletingLastPathComponent,
            buildNIO: !noNio, progress: progress)
        let demoHelp = tools.demo.flatMap { Self.demoHelp($0, tools: tools) }
        var catalog = ServerCatalog(tools: tools, demoHelp: demoHelp)
        catalog.restrict(to: servers.map { Set($0.split(separator: ",").map(String.init)) })
        for (server, reason) in catalog.missing.sorted(by: { $0.key < $1.key }) {
            progress.note("not in this run: \(server) — \(reason)")
        }
        let selected = workloads.map { list in
            let ids = list.split(separator: ",")
            return Workload.all.filter { ids.contains(Substring($0.id)) || (ids.contains("tls") && Workload.tls.contains($0)) }
        }
            ?? Workload.all
        let runner = Runner(profile: profile, catalog: catalog, tools: tools, pinning: pinning, harness: harness, progress: progress)

        var report = RunReport(
            machine: .current(), profile: profile.name, startedAt: ISO8601DateFormatter().string(from: Date()),
            rounds: profile.rounds, sliceSeconds: profile.sliceSeconds, pinning: pinning.description)
        report.missingServers = catalog.missing
        report.commit = Self.commit(tools: tools)
        for workload in selected {
            progress.note("workload \(workload.id): \(workload.title)")
            report.workloads.append(runner.run(workload))
        }
        let probe = CostProbe(tools: tools, pinning: pinning, progress: progress)
        let costIDs = costs.split(separator: ",").map(String.init)
        for workload in CostWorkload.all where costIDs.contains("all") || costIDs.contains(workload.id) {
            progress.note("cost \(workload.id): \(workload.title), \(workload.shortRequests) and \(workload.longRequests) requests under callgrind and strace")
            report.costs.append(probe.run(workload, catalog: catalog))
        }
        report.loadGeneratorCeiling = Self.ceiling(report)
        report.targets = Targets.check(report)
        report.notes = Self.notes
        print(TerminalReport.render(report))
        try write(report, root: root, progress: progress)
        progress.note("done")
    }

    private func write(_ report: RunReport, root: String, progress: Progress) throws {
        let directory = output ?? "\(root)/Perf/results"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(report).write(to: URL(fileURLWithPath: "\(directory)/latest.json"))
        try MarkdownReport.render(report).write(toFile: "\(directory)/latest.md", atomically: true, encoding: .utf8)
        try SVGChart.render(report).write(toFile: "\(directory)/latest.svg", atomically: true, encoding: .utf8)
        progress.note("wrote \(directory)/latest.json, latest.md, latest.svg")
    }

    /// What the load generator reaches against the fastest C peer at 100 connections, with its own CPU.
    static func ceiling(_ report: RunReport) -> String {
        guard let workload = report.workloads.first(where: { $0.id == "echo-100" }),
            let fastest = workload.rows.filter({ $0.server.hasPrefix("c-") }).max(by: { $0.median < $1.median })
        else { return "not measured (needs echo-100 with a C peer)" }
        let loadShare = (fastest.loadCPUShare ?? 0) * 100
        let serverShare = fastest.slices.reduce(0) { $0 + $1.serverCPUSeconds } / max(1e-9, fastest.slices.reduce(0) { $0 + $1.seconds }) * 100
        var verdict = loadShare < 90
            ? "it had CPU to spare, so it is not the bottleneck"
            : "it was busy the whole time, so it co-limits throughput on this machine: compare server CPU µs/req too"
        if loadShare < 90 && serverShare < 90 {
            verdict += " (nor was the server CPU-bound: round trips and other processes on the machine set the pace,"
                + " which is why server CPU µs/req is reported next to every rate)"
        }
        return String(
            format: "ceiling %@ req/s against %@ at 100 connections, load generator %.0f%% of its core, server %.0f%% of its core: %@",
            TableFormat.metric(fastest.median, .requestsPerSecond), fastest.label, loadShare, serverShare, verdict)
    }

    static let notes = [
        "Every server listens with a backlog of 4096 (SocketServer's SOMAXCONN default); Python's default of 5 was raised so that the kernel's SYN queue is not what gets measured.",
        "Allocation counts come from an LD_PRELOAD malloc counter (Perf/Peers/c/malloc_count.c); Python's small-object allocator (pymalloc) bypasses malloc, so Python peers are not measured there.",
        "Stop time is SIGTERM to process exit with nothing in flight: an upper bound for shutdown() to serveForever returning, process teardown included.",
        "Memory per idle connection is (RSS with the connections open − RSS before) / connections, each connection having made one echo.",
    ]

    /// This binary's absolute path (the load generator runs it again as `perf load`).
    static func executablePath() -> String {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return resolved
        }
        let argument = CommandLine.arguments[0]
        return argument.hasPrefix("/") ? argument : "\(FileManager.default.currentDirectoryPath)/\(argument)"
    }

    /// The current directory when it is SocketServer's root; else the root above this binary when it was built
    /// by `swift build --package-path Perf` (ROOT/Perf/.build/CONFIGURATION/perf); else the current directory.
    static func packageRoot(harness: String) -> String {
        let current = FileManager.default.currentDirectoryPath
        var candidates = [current, (current as NSString).deletingLastPathComponent]
        var directory = harness
        for _ in 0..<5 {
            directory = (directory as NSString).deletingLastPathComponent
            candidates.append(directory)
        }
        return candidates.first { FileManager.default.fileExists(atPath: "\($0)/Perf/Peers") } ?? current
    }

    /// The tree the run was built from, or "unknown" outside a git checkout.
    static func commit(tools: PeerTools) -> String {
        let path = "\(tools.outDirectory)/tmp/commit.txt"
        guard let child = try? ChildProcess(
            arguments: ["git", "-C", tools.root, "describe", "--always", "--dirty"], stdoutPath: path,
            stderrPath: "/dev/null"),
            child.wait(timeout: 10) == 0, let text = readText(path)
        else { return "unknown" }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Asks the demo what it offers (`echo --help`).
    static func demoHelp(_ demo: String, tools: PeerTools) -> DemoHelp? {
        let path = "\(tools.outDirectory)/tmp/demo-help.txt"
        guard let child = try? ChildProcess(arguments: [demo, "echo", "--help"], stdoutPath: path, stderrPath: path),
            child.wait(timeout: 10) != nil, let text = readText(path)
        else { return nil }
        return DemoHelp(helpText: text)
    }

    /// Kills every child server on Ctrl-C (they run in their own process groups, so they do not get it).
    static func cleanUpOnInterrupt() -> any DispatchSourceSignal {
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            ChildProcess.killAll()
            print("\ninterrupted: servers stopped")
            Glibc.exit(130)
        }
        source.resume()
        return source
    }
}
