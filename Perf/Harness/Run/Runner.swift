import Foundation
import Glibc

/// Runs every workload against every server that can take it: starts the servers (pinned to one core),
/// drives them in alternating slices with the load generator (pinned to another), stops them, and
/// summarises each server's rounds and its ratios to every other server.
struct Runner {
    let profile: Profile
    let catalog: ServerCatalog
    let tools: PeerTools
    let pinning: CorePinning
    let harness: String
    let progress: Progress

    private struct RunningServer {
        let spec: ServerSpec
        let process: ChildProcess
        let address: String
        let counterFile: String?
    }

    func run(_ workload: Workload) -> WorkloadReport {
        var report = WorkloadReport(
            id: workload.id, title: workload.title, metric: workload.metric, delayMilliseconds: workload.delayMilliseconds)
        var running: [RunningServer] = []
        for spec in catalog.servers {
            switch spec.command(for: workload, documentRoot: tools.documentRoot, port: port(for: spec)) {
            case .failure(let reason):
                report.skipped[spec.id] = reason.text
            case .success(let command):
                if workload.countsAllocations && tools.mallocPreload == nil {
                    report.skipped[spec.id] = "no allocation counter"
                    continue
                }
                switch start(spec, command: command, workload: workload) {
                case .success(let server): running.append(server)
                case .failure(let reason): report.skipped[spec.id] = reason.text
                }
            }
        }
        var rows = running.map { ServerRow(server: $0.spec.id, label: $0.spec.label, family: $0.spec.family) }
        let quiet = workload.kind.isIdle || workload.countsAllocations
        let rounds = quiet ? profile.quietRounds : (workload.connections >= 1000 ? profile.heavyRounds : profile.rounds)
        for round in 0..<rounds {
            let order = running.indices.map { ($0 + round) % running.count }
            for index in order {
                let server = running[index]
                if workload.kind.isIdle && round > 0 {
                    // Memory needs a fresh server each round, or the first round's high-water mark stays.
                    server.process.terminate()
                    if case .success(let command) = server.spec.command(for: workload, documentRoot: tools.documentRoot, port: port(for: server.spec)),
                        case .success(let fresh) = start(server.spec, command: command, workload: workload)
                    {
                        running[index] = fresh
                    }
                }
                let outcome = slice(running[index], workload: workload)
                switch outcome {
                case .success(let result):
                    if workload.kind.isIdle && result.stalled * 20 > UInt64(workload.connections) {
                        rows[index].failure = "served only \(result.requests) of \(workload.connections) connections"
                    }
                    rows[index].slices.append(result)
                    rows[index].values.append(value(of: result, for: workload))
                    progress.note(
                        "\(workload.id) round \(round + 1)/\(rounds) \(server.spec.id): "
                            + describe(result, workload: workload))
                case .failure(let error):
                    rows[index].values.append(nil)
                    rows[index].failure = error.text
                    progress.note("\(workload.id) round \(round + 1)/\(rounds) \(server.spec.id): FAILED \(error.text)")
                }
            }
        }
        // SocketServer's modes stop one at a time, so that their stop times are not inflated by other
        // servers exiting on the same core; the peers (Python polls for up to 0.5 s) then stop together.
        var stops = [Double?](repeating: nil, count: running.count)
        for (index, server) in running.enumerated() where server.spec.family == .mode {
            stops[index] = ChildProcess.terminateAll([server.process])[0]
        }
        let peers = running.indices.filter { running[$0].spec.family == .peer }
        for (index, stop) in zip(peers, ChildProcess.terminateAll(peers.map { running[$0].process })) {
            stops[index] = stop
        }
        for (index, server) in running.enumerated() {
            rows[index].stopSeconds = stops[index]
            if let status = server.process.poll(), status != 0 {
                rows[index].failure = (rows[index].failure.map { $0 + "; " } ?? "") + "exited with status \(status) on SIGTERM"
            }
            if let file = server.counterFile { unlink(file) }
        }
        for index in rows.indices { summarise(&rows[index], workload: workload) }
        for index in rows.indices {
            for other in rows where other.server != rows[index].server {
                rows[index].ratios[other.server] = RatioSummary(rows[index].values, reference: other.values)
            }
        }
        report.rows = rows
        return report
    }

    /// 0 for a server that announces its address; a free port for one that does not (nginx), found by binding
    /// port 0 and closing it again (another process could take it in between: then the start fails, reported).
    private func port(for spec: ServerSpec) -> Int {
        spec.announcesAddress ? 0 : LoopbackSocket.freePort()
    }

    private func start(_ spec: ServerSpec, command: [String], workload: Workload) -> Result<RunningServer, SkipReason> {
        var environment: [String: String] = [:]
        var counterFile: String?
        if workload.countsAllocations, let preload = tools.mallocPreload {
            let file = "\(tools.outDirectory)/tmp/allocations-\(spec.id)"
            let fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0, ftruncate(fd, 4096) == 0 else { return .failure(SkipReason("cannot create \(file)")) }
            close(fd)
            environment = ["LD_PRELOAD": preload, "PERF_MALLOC_COUNT_FILE": file]
            counterFile = file
        }
        let log = "\(tools.logDirectory)/\(workload.id)-\(spec.id)"
        guard let process = try? ChildProcess(
            arguments: pinning.serverPrefix() + command, stdoutPath: log + ".out", stderrPath: log + ".err",
            environment: environment)
        else { return .failure(SkipReason("could not start \(command[0])")) }
        if !spec.announcesAddress {
            guard let address = Self.listenAddress(in: command), process.waitUntilAccepting(address, timeout: 20) else {
                process.terminate()
                return .failure(SkipReason("did not accept connections (see \(log).err)"))
            }
            return .success(RunningServer(spec: spec, process: process, address: address, counterFile: counterFile))
        }
        guard let line = process.firstLine(timeout: 20), line.hasPrefix("listening on ") else {
            let status = process.poll()
            process.terminate()
            if status == 2 { return .failure(SkipReason("not supported by the demo yet (exit 2, see \(log).err)")) }
            return .failure(SkipReason("did not print `listening on` (see \(log).err)"))
        }
        let address = String(line.dropFirst("listening on ".count))
        return .success(RunningServer(spec: spec, process: process, address: address, counterFile: counterFile))
    }

    /// The address a server that does not announce one listens on: nginx's configuration names it.
    static func listenAddress(in command: [String]) -> String? {
        guard let index = command.firstIndex(of: "-c"), index + 1 < command.count,
            let text = readText(command[index + 1]),
            let line = text.split(separator: "\n").first(where: { $0.contains("listen 127.0.0.1:") }),
            let start = line.range(of: "127.0.0.1:")
        else { return nil }
        let port = line[start.upperBound...].prefix { $0.isNumber }
        return "127.0.0.1:\(port)"
    }

    private func slice(_ server: RunningServer, workload: Workload) -> Result<LoadResult, SkipReason> {
        let output = "\(tools.outDirectory)/tmp/load.json"
        var arguments = pinning.loadPrefix() + [
            harness, "load", "--kind", workload.kind.rawValue, "--address", server.address,
            "--connections", String(workload.connections), "--server-pid", String(server.process.pid),
            "--warmup", String(profile.warmupSeconds), "--duration", String(profile.sliceSeconds),
            "--settle", String(profile.settleSeconds),
        ]
        if let file = server.counterFile { arguments += ["--malloc-file", file] }
        if workload.kind == .http || workload.kind.isTLS { arguments += ["--path", workload.path] }
        if workload.kind.isTLS, let tls = tools.tls { arguments += ["--ca-file", tls.certificate] }
        guard let load = try? ChildProcess(arguments: arguments, stdoutPath: output, stderrPath: "\(tools.logDirectory)/load.err")
        else { return .failure(SkipReason("could not start the load generator")) }
        guard load.wait(timeout: 60) == 0 else {
            load.terminate()
            return .failure(SkipReason("load generator failed (see Perf/out/logs/load.err)"))
        }
        if server.process.poll() != nil { return .failure(SkipReason("server exited during the slice")) }
        guard let text = readText(output), let result = try? JSONDecoder().decode(LoadResult.self, from: Data(text.utf8))
        else { return .failure(SkipReason("unreadable load result")) }
        return .success(result)
    }

    private func value(of result: LoadResult, for workload: Workload) -> Double? {
        switch workload.metric {
        case .requestsPerSecond:
            return result.requestsPerSecond
        case .mebibytesPerSecond:
            return result.seconds > 0 && result.bytes > 0 ? Double(result.bytes) / 1_048_576 / result.seconds : nil
        case .bytesPerConnection:
            // Memory per connection means nothing unless the server took (nearly) all of them on.
            guard result.requests > 0, result.stalled * 20 <= UInt64(workload.connections) else { return nil }
            return (Double(result.serverRSSBytes) - Double(result.serverRSSBeforeBytes)) / Double(result.requests)
        case .allocationsPerRequest:
            guard let allocations = result.serverAllocations, result.requests > 0 else { return nil }
            return Double(allocations) / Double(result.requests)
        }
    }

    private func summarise(_ row: inout ServerRow, workload: Workload) {
        let values = row.values.compactMap { $0 }.sorted()
        row.median = values.isEmpty ? 0 : RatioSummary.median(values)
        func medianOf(_ pick: (LoadResult) -> Double) -> Double {
            let picked = row.slices.map(pick).sorted()
            return picked.isEmpty ? 0 : RatioSummary.median(picked)
        }
        row.p50Micros = medianOf(\.p50Micros)
        row.p99Micros = medianOf(\.p99Micros)
        row.p999Micros = medianOf(\.p999Micros)
        let requests = row.slices.reduce(0) { $0 + $1.requests }
        let cpu = row.slices.reduce(0) { $0 + $1.serverCPUSeconds }
        // /proc counts CPU in 10 ms ticks per process: a server spread over dozens of lightly loaded
        // children (forking) can read 0, which is "unknown", not "free".
        if requests > 0 && !workload.kind.isIdle && cpu > 0 { row.cpuMicrosPerRequest = cpu / Double(requests) * 1e6 }
        let window = row.slices.reduce(0) { $0 + $1.seconds }
        if window > 0 { row.loadCPUShare = row.slices.reduce(0) { $0 + $1.loadCPUSeconds } / window }
        row.peakRSSBytes = row.slices.map(\.serverPeakRSSBytes).max() ?? 0
        row.errors = row.slices.reduce(0) { $0 + $1.errors }
        row.stalled = row.slices.map(\.stalled).max() ?? 0
    }

    private func describe(_ result: LoadResult, workload: Workload) -> String {
        let shown = value(of: result, for: workload).map { TableFormat.metric($0, workload.metric) } ?? "n/a"
        var text = "\(shown) \(workload.metric.rawValue)"
        if workload.metric == .requestsPerSecond {
            text += String(format: ", p99 %.0f µs", result.p99Micros)
        }
        if result.errors > 0 { text += ", \(result.errors) errors" }
        if result.stalled > 0 { text += ", \(result.stalled) stalled" }
        return text
    }
}
