/// The targets of issue 6 (and, through `LaterTargets`, of issues 11, 13 and 14), checked against one run's results.
struct TargetVerdict: Codable, Sendable {
    enum Outcome: String, Codable, Sendable {
        case met, tie = "within noise", notMet = "not met", notMeasured = "not measured"
    }
    var target: String
    var outcome: Outcome
    var measured: String
}

enum Targets {
    /// The reference a ratio target compares with, and the least ratio it asks for.
    private struct RatioTarget {
        let workload: String
        let server: String
        let reference: String
        let atLeast: Double
    }

    private static let ratioTargets: [RatioTarget] = [
        .init(workload: "echo-100", server: "event", reference: "c-bufferevent", atLeast: 1.0),
        .init(workload: "echo-100", server: "event", reference: "nio", atLeast: 1.0),
        .init(workload: "echo-100", server: "event", reference: "c-raw", atLeast: 0.85),
        .init(workload: "echo-1000", server: "event", reference: "c-bufferevent", atLeast: 1.0),
        .init(workload: "echo-1000", server: "event", reference: "nio", atLeast: 1.0),
        .init(workload: "echo-1000", server: "event", reference: "c-raw", atLeast: 0.85),
        .init(workload: "bulk", server: "event", reference: "c-raw", atLeast: 0.8),
        .init(workload: "connect-10", server: "sync", reference: "c-sequential", atLeast: 0.9),
        .init(workload: "connect-10", server: "sync", reference: "py-sync", atLeast: 1.5),
        .init(workload: "connect-10", server: "threading", reference: "py-threading", atLeast: 3),
        .init(workload: "udp-10", server: "threading", reference: "py-threading", atLeast: 5),
        .init(workload: "connect-10", server: "forking", reference: "py-forking", atLeast: 5),
        .init(workload: "echo-100", server: "async", reference: "event", atLeast: 0.8),
    ]

    static func check(_ report: RunReport) -> [TargetVerdict] {
        func workload(_ id: String) -> WorkloadReport? { report.workloads.first { $0.id == id } }
        var verdicts: [TargetVerdict] = []
        for target in ratioTargets {
            let name = "\(target.server) \(target.workload) ≥ \(RatioSummary.format(target.atLeast))× \(target.reference)"
            guard let row = workload(target.workload)?.row(target.server),
                let ratio = row.ratios[target.reference]
            else {
                verdicts.append(.init(target: name, outcome: .notMeasured, measured: "–"))
                continue
            }
            var measured = ratio.text
            if let cpu = row.cpuMicrosPerRequest,
                let referenceCPU = workload(target.workload)?.row(target.reference)?.cpuMicrosPerRequest
            {
                measured += String(format: "; server CPU %.1f vs %.1f µs/req", cpu, referenceCPU)
            }
            let outcome: TargetVerdict.Outcome =
                ratio.median >= target.atLeast ? .met : (ratio.high >= target.atLeast ? .tie : .notMet)
            verdicts.append(.init(target: name, outcome: outcome, measured: measured))
        }
        for (workloadID, server) in [("echo-100", "event"), ("echo-1000", "event"), ("echo-1000", "threading")] {
            let name = "\(server) \(workloadID): no connection stalled"
            guard let row = workload(workloadID)?.row(server), !row.slices.isEmpty else {
                verdicts.append(.init(target: name, outcome: .notMeasured, measured: "–"))
                continue
            }
            verdicts.append(
                .init(target: name, outcome: row.stalled == 0 && row.failure == nil ? .met : .notMet,
                      measured: "\(row.stalled) stalled, \(row.errors) errors"))
        }
        let memoryName = "event ≤ 1,500 B per idle connection at 10,000"
        if let row = workload("idle-10000")?.row("event"), !row.slices.isEmpty {
            verdicts.append(
                .init(target: memoryName, outcome: row.median <= 1500 ? .met : .notMet,
                      measured: String(format: "%.0f B/conn", row.median)))
        } else {
            verdicts.append(.init(target: memoryName, outcome: .notMeasured, measured: "–"))
        }
        let allocationName = "event: 0 heap allocations per echo in steady state"
        if let row = workload("allocs")?.row("event"), !row.slices.isEmpty {
            verdicts.append(
                .init(target: allocationName, outcome: row.median < 0.01 ? .met : .notMet,
                      measured: String(format: "%.2f allocs/req", row.median)))
        } else {
            verdicts.append(.init(target: allocationName, outcome: .notMeasured, measured: "–"))
        }
        for mode in ServerCatalog.modeNames {
            let name = "\(mode): SIGTERM → exit ≤ 5 ms, idle (upper bound of shutdown() → serveForever returning)"
            let stops = report.workloads.compactMap { $0.row(mode)?.stopSeconds }.sorted()
            guard !stops.isEmpty else {
                verdicts.append(.init(target: name, outcome: .notMeasured, measured: "–"))
                continue
            }
            let median = RatioSummary.median(stops)
            verdicts.append(
                .init(target: name, outcome: median <= 0.005 ? .met : .notMet,
                      measured: String(format: "median %.1f ms, max %.1f ms over %d stops", median * 1000,
                                       (stops.last ?? 0) * 1000, stops.count)))
        }
        return verdicts + LaterTargets.check(report)
    }
}
