/// The rows of one workload's table, shared by the terminal and Markdown reports.
enum ResultTable {
    static let header = [
        "server", "value", "vs C libevent", "vs SwiftNIO", "p50 µs", "p99 µs", "p99.9 µs", "CPU µs/req",
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

    static func rows(_ workload: WorkloadReport) -> [[String]] {
        let latency = workload.metric == .requestsPerSecond
        return workload.rows.map { row in
            let reference = cReference(for: workload)
            return [
                row.label,
                row.values.compactMap({ $0 }).isEmpty
                    ? "failed" : TableFormat.metric(row.median, workload.metric) + " " + workload.metric.rawValue,
                row.server == reference ? "1 (ref)" : (row.ratios[reference]?.text ?? "–"),
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
