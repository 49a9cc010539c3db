import Foundation

/// The targets of issues 13 (cost per request, C floors), 11 (async mode) and 14 (HTTP next to nginx), checked
/// against one run. Instruction counts are deterministic; the ratios are paired in the run.
enum LaterTargets {
    static func check(_ report: RunReport) -> [TargetVerdict] {
        costTargets(report) + floorTargets(report) + asyncTargets(report) + httpTargets(report)
    }

    private static func cost(_ report: RunReport, _ id: String) -> CostReport? { report.costs.first { $0.id == id } }
    private static func workload(_ report: RunReport, _ id: String) -> WorkloadReport? {
        report.workloads.first { $0.id == id }
    }
    private static let unmeasured = "–"

    /// Issue 13: instructions per request, absolute or against a peer.
    private static func costTargets(_ report: RunReport) -> [TargetVerdict] {
        let absolute: [(cost: String, server: String, atMost: Double)] = [
            ("cost-tcp", "sync", 1200), ("cost-udp", "event", 1000), ("cost-udp", "sync", 1500),
            ("cost-udp", "pool", 2500),
        ]
        var verdicts: [TargetVerdict] = []
        let eventName = "event cost-tcp ≤ 2× c-raw instructions/request"
        if let table = cost(report, "cost-tcp"), let mine = table.row("event")?.instructionsPerRequest,
            let floor = table.row("c-raw")?.instructionsPerRequest
        {
            verdicts.append(
                .init(target: eventName, outcome: mine <= 2 * floor ? .met : .notMet,
                      measured: String(format: "%.0f vs %.0f (%.2f×)", mine, floor, mine / max(1, floor))))
        } else {
            verdicts.append(.init(target: eventName, outcome: .notMeasured, measured: unmeasured))
        }
        for target in absolute {
            let name = "\(target.server) \(target.cost) ≤ \(Int(target.atMost)) instructions/request"
            guard let value = cost(report, target.cost)?.row(target.server)?.instructionsPerRequest else {
                verdicts.append(.init(target: name, outcome: .notMeasured, measured: unmeasured))
                continue
            }
            verdicts.append(
                .init(target: name, outcome: value <= target.atMost ? .met : .notMet,
                      measured: String(format: "%.0f", value)))
        }
        return verdicts
    }

    /// Issue 13: paired ratios against the C floors (throughput; for echo-100, server CPU per request).
    private static func floorTargets(_ report: RunReport) -> [TargetVerdict] {
        let ratios: [(workload: String, server: String, reference: String, atLeast: Double)] = [
            ("connect-10", "forking", "c-fork", 0.6), ("connect-10", "threading", "c-threads", 0.95),
            ("connect-10", "sync", "c-sequential", 0.9), ("udp-10", "event", "c-udp", 1.2),
            ("bulk", "event", "c-raw", 0.9),
        ]
        var verdicts: [TargetVerdict] = []
        for target in ratios {
            let name = "\(target.server) \(target.workload) ≥ \(RatioSummary.format(target.atLeast))× \(target.reference)"
            guard let ratio = workload(report, target.workload)?.row(target.server)?.ratios[target.reference] else {
                verdicts.append(.init(target: name, outcome: .notMeasured, measured: unmeasured))
                continue
            }
            let outcome: TargetVerdict.Outcome =
                ratio.median >= target.atLeast ? .met : (ratio.high >= target.atLeast ? .tie : .notMet)
            verdicts.append(.init(target: name, outcome: outcome, measured: ratio.text))
        }
        verdicts.append(
            cpuRatio(report, workload: "echo-100", server: "event", reference: "c-raw", atMost: 1.0,
                     name: "event echo-100 server CPU/request ≤ 1.00× c-raw's"))
        return verdicts
    }

    /// server's CPU per request over reference's, at most `atMost`.
    private static func cpuRatio(
        _ report: RunReport, workload id: String, server: String, reference: String, atMost: Double, name: String
    ) -> TargetVerdict {
        guard let table = workload(report, id), let mine = table.row(server)?.cpuMicrosPerRequest,
            let theirs = table.row(reference)?.cpuMicrosPerRequest, theirs > 0
        else { return .init(target: name, outcome: .notMeasured, measured: unmeasured) }
        return .init(
            target: name, outcome: mine / theirs <= atMost ? .met : .notMet,
            measured: String(format: "%.2f× (%.1f vs %.1f µs/req)", mine / theirs, mine, theirs))
    }

    /// Issue 11: async mode next to event mode.
    private static func asyncTargets(_ report: RunReport) -> [TargetVerdict] {
        var verdicts = [
            cpuRatio(report, workload: "echo-100", server: "async", reference: "event", atMost: 1.25,
                     name: "async echo-100 server CPU/request ≤ 1.25× event's")
        ]
        let allocationName = "async: ≤ 2 heap allocations per echoed message"
        if let row = workload(report, "allocs")?.row("async"), !row.slices.isEmpty {
            verdicts.append(
                .init(target: allocationName, outcome: row.median <= 2 ? .met : .notMet,
                      measured: String(format: "%.2f allocs/req (event: %@)", row.median,
                                       workload(report, "allocs")?.row("event").map { String(format: "%.2f", $0.median) } ?? "–")))
        } else {
            verdicts.append(.init(target: allocationName, outcome: .notMeasured, measured: unmeasured))
        }
        for mode in ["event", "async"] {
            // Both idle workloads run these modes on 2 loops: the threads must not grow from 1,000 to 10,000
            // connections, and stay within the loops + main thread + one helper.
            let memoryName = "\(mode), 10,000 idle connections on 2 loops: ≤ 2 KB each, threads = loops + a constant"
            guard let row = workload(report, "idle-10000")?.row(mode), let slice = row.slices.last else {
                verdicts.append(.init(target: memoryName, outcome: .notMeasured, measured: unmeasured))
                continue
            }
            let atThousand = workload(report, "idle-1000")?.row(mode)?.slices.last?.serverThreads
            let constant = slice.serverThreads <= 2 + 2 && atThousand.map { slice.serverThreads <= $0 } ?? true
            let thousandText = atThousand.map { ", \($0) at 1,000" } ?? ""
            verdicts.append(
                .init(target: memoryName, outcome: row.median <= 2048 && constant && row.failure == nil ? .met : .notMet,
                      measured: String(format: "%.0f B/conn; ", row.median)
                        + "\(slice.serverThreads) threads at 10,000 connections\(thousandText)"))
        }
        return verdicts
    }

    /// Issue 14: the demo's best mode next to nginx, and no starved connection in pool and forking modes.
    private static func httpTargets(_ report: RunReport) -> [TargetVerdict] {
        var verdicts: [TargetVerdict] = []
        for (id, atLeast) in [("http-1k", 0.8), ("http-1m", 0.9)] {
            let name = "best mode \(id) ≥ \(RatioSummary.format(atLeast))× nginx"
            guard let table = workload(report, id),
                let best = table.rows.filter({ ServerCatalog.modeNames.contains($0.server) && $0.ratios["nginx"] != nil })
                    .max(by: { ($0.ratios["nginx"]?.median ?? 0) < ($1.ratios["nginx"]?.median ?? 0) }),
                let ratio = best.ratios["nginx"]
            else {
                verdicts.append(.init(target: name, outcome: .notMeasured, measured: unmeasured))
                continue
            }
            let outcome: TargetVerdict.Outcome = ratio.median >= atLeast ? .met : (ratio.high >= atLeast ? .tie : .notMet)
            verdicts.append(.init(target: name, outcome: outcome, measured: "\(best.server) \(ratio.text)"))
            for mode in ["pool", "forking"] {
                let starvation = "\(mode) \(id): every connection answered"
                guard let row = table.row(mode), !row.slices.isEmpty else {
                    verdicts.append(.init(target: starvation, outcome: .notMeasured, measured: unmeasured))
                    continue
                }
                verdicts.append(
                    .init(target: starvation, outcome: row.stalled == 0 ? .met : .notMet,
                          measured: "\(row.stalled) of \(idConnections(id)) never answered in a slice"))
            }
        }
        return verdicts
    }

    private static func idConnections(_ id: String) -> Int {
        Workload.all.first { $0.id == id }?.connections ?? 0
    }
}
