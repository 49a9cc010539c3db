import Foundation
import Glibc

/// Runs each server twice under callgrind and twice under strace (short and long runs of a `CostWorkload`) and
/// turns the differences into instructions and system calls per request.
struct CostProbe {
    let tools: PeerTools
    let pinning: CorePinning
    let progress: Progress

    enum Tool { case callgrind, strace }

    /// What one run under one tool counted.
    private struct Totals {
        var instructions: Double = 0
        var syscalls: [String: Double] = [:]
    }

    func run(_ workload: CostWorkload, catalog: ServerCatalog) -> CostReport {
        var report = CostReport(
            id: workload.id, title: workload.title, shortRequests: workload.shortRequests,
            longRequests: workload.longRequests)
        for spec in catalog.servers {
            guard case .success(let command) = spec.command(for: workload.base) else {
                if case .failure(let reason) = spec.command(for: workload.base) { report.skipped[spec.id] = reason.text }
                continue
            }
            var row = CostRow(server: spec.id, label: spec.label, family: spec.family)
            if tools.valgrind != nil {
                switch difference(spec, command: command, workload: workload, tool: .callgrind) {
                case .success(let delta): row.instructionsPerRequest = delta.instructions
                case .failure(let reason): row.failure = "callgrind: \(reason.text)"
                }
            }
            if tools.strace != nil && row.failure?.contains("not supported") != true {
                switch difference(spec, command: command, workload: workload, tool: .strace) {
                case .success(let delta):
                    row.syscallsPerRequest = delta.syscalls.values.reduce(0, +)
                    row.syscalls = delta.syscalls.filter { $0.value >= 0.05 }
                case .failure(let reason):
                    row.failure = (row.failure.map { $0 + "; " } ?? "") + "strace: \(reason.text)"
                }
            }
            if row.failure?.contains("not supported") == true {
                report.skipped[spec.id] = row.failure
                continue
            }
            progress.note(
                "\(workload.id) \(spec.id): "
                    + (row.instructionsPerRequest.map { String(format: "%.0f instructions/req", $0) } ?? "–") + ", "
                    + (row.syscallsPerRequest.map { String(format: "%.2f syscalls/req", $0) } ?? "–")
                    + (row.failure.map { " (\($0))" } ?? ""))
            report.rows.append(row)
        }
        return report
    }

    /// (long − short) / extra requests, for one tool.
    private func difference(_ spec: ServerSpec, command: [String], workload: CostWorkload, tool: Tool)
        -> Result<Totals, SkipReason>
    {
        let (shortCount, longCount) = workload.requests(for: spec)
        let short = measure(spec, command: command, workload: workload, requests: shortCount, tool: tool)
        guard case .success(let first) = short else { return short }
        let long = measure(spec, command: command, workload: workload, requests: longCount, tool: tool)
        guard case .success(let second) = long else { return long }
        let extra = Double(longCount - shortCount)
        var delta = Totals(instructions: (second.instructions - first.instructions) / extra)
        for name in Set(first.syscalls.keys).union(second.syscalls.keys) {
            let perRequest = ((second.syscalls[name] ?? 0) - (first.syscalls[name] ?? 0)) / extra
            if perRequest > 0.005 { delta.syscalls[name] = perRequest }
        }
        return .success(delta)
    }

    /// One run: start the server under the tool, make `requests` requests, stop it with SIGTERM, read the counts.
    private func measure(_ spec: ServerSpec, command: [String], workload: CostWorkload, requests: Int, tool: Tool)
        -> Result<Totals, SkipReason>
    {
        let directory = "\(tools.outDirectory)/cost/\(workload.id)-\(spec.id)-\(requests)"
        removeTree(directory)
        mkdir("\(tools.outDirectory)/cost", 0o755)
        mkdir(directory, 0o755)
        defer { removeTree(directory) }
        let log = "\(tools.logDirectory)/\(workload.id)-\(spec.id)-\(tool)"
        let wrapped: [String]
        switch tool {
        case .callgrind:
            guard let valgrind = tools.valgrind else { return .failure(SkipReason("valgrind not installed")) }
            // Forked children write their own file (%p); threads share the process's. A forked child starts
            // with its parent's counters, so the parent dumps (and so zeroes them) on entering fork: then the
            // parent's dumps and each child's file count every instruction once.
            let program = [tools.valgrindCopy(of: command[0])] + command.dropFirst()
            wrapped = [valgrind, "--tool=callgrind", "--dump-instr=no", "--dump-line=no", "--trace-children=no",
                       "--dump-before=*fork",
                       "--callgrind-out-file=\(directory)/callgrind.%p", "--log-file=\(log).valgrind"] + program
        case .strace:
            guard let strace = tools.strace else { return .failure(SkipReason("strace not installed")) }
            wrapped = [strace, "-f", "-c", "-o", "\(directory)/strace.txt", "--"] + command
        }
        guard let process = try? ChildProcess(
            arguments: pinning.serverPrefix() + wrapped, stdoutPath: log + ".out", stderrPath: log + ".err")
        else { return .failure(SkipReason("could not start \(command[0])")) }
        guard let line = process.firstLine(timeout: 180), line.hasPrefix("listening on "),
            let endpoint = IPv4Endpoint(String(line.dropFirst("listening on ".count)))
        else {
            let status = process.poll()
            process.terminate(grace: 30)
            if status == 2 { return .failure(SkipReason("not supported by the demo yet (exit 2)")) }
            return .failure(SkipReason("did not print `listening on` (see \(log).err)"))
        }
        let answered = CountedLoad(endpoint: endpoint, kind: workload.base.kind, requests: requests).run()
        // Under strace the server is strace's child: signal it, and strace ends when it has.
        let target = tool == .strace ? ProcessSample.childProcesses(of: process.pid).first ?? process.pid : process.pid
        kill(target, SIGTERM)
        guard process.wait(timeout: 120) != nil else {
            process.terminate(grace: 1)
            return .failure(SkipReason("did not exit within 120 s of SIGTERM"))
        }
        guard answered == requests else {
            return .failure(SkipReason("answered \(answered) of \(requests) requests"))
        }
        var totals = Totals()
        switch tool {
        case .callgrind:
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory))?
                .filter { $0.hasPrefix("callgrind.") } ?? []
            for file in files { totals.instructions += Self.callgrindTotal(Self.tail(of: "\(directory)/\(file)")) }
            guard totals.instructions > 0 else { return .failure(SkipReason("no callgrind output")) }
        case .strace:
            guard let text = readText("\(directory)/strace.txt") else { return .failure(SkipReason("no strace output")) }
            totals.syscalls = Self.straceCalls(text)
        }
        return .success(totals)
    }

    /// The instruction total of one callgrind output file (its `summary:` or `totals:` line).
    static func callgrindTotal(_ text: String) -> Double {
        for line in text.split(separator: "\n").reversed() where line.hasPrefix("summary:") || line.hasPrefix("totals:") {
            if let value = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) { return value }
        }
        return 0
    }

    /// The last 4 KiB of a file (where callgrind writes its totals; a forked child's file is hundreds of KiB).
    static func tail(of path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        let size = lseek(fd, 0, SEEK_END)
        guard size >= 0 else { return "" }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, max(0, size - 4096)) }
        return String(decoding: bytes.prefix(max(0, count)), as: UTF8.self)
    }

    /// The `calls` column of `strace -c`, by system call name.
    static func straceCalls(_ text: String) -> [String: Double] {
        var calls: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 5, let name = fields.last, name != "total", let count = Double(fields[3]),
                Double(fields[0]) != nil
            else { continue }
            calls[String(name)] = count
        }
        return calls
    }

    private func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
