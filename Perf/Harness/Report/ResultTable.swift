/// The rows of one workload's table, shared by the terminal and Markdown reports.
enum ResultTable {
    static let header = [
        "server", "value", "vs C libevent", "vs floor", "vs SwiftNIO", "p50 µs", "p99 µs", "p99.9 µs", "CPU µs/req",
        "loadgen CPU", "peak RSS MiB", "errors", "stalled", "stop ms",
    ]

    /// The C libevent peer a workload compares with: the UDP one for UDP, the bufferevent one otherwise.
    static func cReference(for workload: WorkloadReport) -> String {
        workload.id.hasPrefix("udp") ? "c-udp" : "c-bufferevent"
    }

    /// The server the chart colours a workload's cells against: the C libevent peer, or for the slow
    /// handler (which the C peers cannot run) Python's ThreadingTCPServer.
    static func chartReference(for workload: WorkloadReport) -> String {
        workload.delayMilliseconds > 0 ? "py-threading" : cReference(for: workload)
    }

    /// The ratio to the mode's floor (`ServerCatalog.floor`) and the floor's id, or "–".
    static func floorText(_ row: ServerRow, _ workload: WorkloadReport) -> String {
        guard workload.metric.higherIsBetter, let floor = ServerCatalog.floor(of: row.server, workload: workload.id),
            let ratio = row.ratios[floor]
        else { return "–" }
        return "\(ratio.text) \(floor)"
    }

    static let costHeader = ["server", "instructions/req", "vs floor", "syscalls/req", "system calls per request"]

    /// The rows of one cost table, shared by the terminal and Markdown reports.
    static func costRows(_ cost: CostReport) -> [[String]] {
        cost.rows.map { row in
            [
                row.label,
                row.instructionsPerRequest.map { String(format: "%.0f", $0) } ?? "–",
                cost.instructionRatio(row.server).map { String(format: "%.2f× %@", $0.ratio, $0.floor) } ?? "–",
                row.syscallsPerRequest.map { String(format: "%.2f", $0) } ?? "–",
                row.syscallSummary.isEmpty ? "–" : row.syscallSummary,
            ]
        }
    }

    static let costExplanation = """
        Instructions are user-space instructions per request under valgrind --tool=callgrind (every thread and \
        forked child; libc, libevent and the Swift runtime included); system calls are from strace -f -c. Both are \
        the long run minus the short run over the extra requests (a process-per-request server runs 10 and 60 \
        requests, a Python one a quarter of the others'), so start-up and shutdown cancel out. They do not move \
        with the machine's load: decide with these; the rates are paired ratios on a shared, noisy machine.
        """

    static func rows(_ workload: WorkloadReport) -> [[String]] {
        let latency = workload.metric == .requestsPerSecond
        return workload.rows.map { row in
            let reference = cReference(for: workload)
            return [
                row.label,
                row.values.compactMap({ $0 }).isEmpty
                    ? "failed" : TableFormat.metric(row.median, workload.metric) + " " + workload.metric.rawValue,
                row.server == reference ? "1 (ref)" : (row.ratios[reference]?.text ?? "–"),
                floorText(row, workload),
                row.server == "nio" ? "1 (ref)" : (row.ratios["nio"]?.text ?? "–"),
                latency ? TableFormat.micros(row.p50Micros) : "–",
                latency ? TableFormat.micros(row.p99Micros) : "–",
                latency ? TableFormat.micros(row.p999Micros) : "–",
                row.cpuMicrosPerRequest.map { String(format: "%.1f", $0) } ?? "–",
                row.loadCPUShare.map { String(format: "%.0f%%", $0 * 100) } ?? "–",
                TableFormat.mebibytes(row.peakRSSBytes),
                String(row.errors),
                String(row.stalled),
                row.stopSeconds.map { String(format: "%.1f", $0 * 1000) } ?? "–",
            ]
        }
    }
}
