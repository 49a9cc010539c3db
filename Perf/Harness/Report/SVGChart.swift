import Foundation

/// A heat map of servers × workloads as plain SVG text: each cell shows the server's value and its ratio
/// to the C libevent peer of that workload, coloured from red (far behind) through yellow to green (ahead).
enum SVGChart {
    static func render(_ report: RunReport) -> String {
        var servers: [(id: String, label: String)] = []
        for workload in report.workloads {
            for row in workload.rows where !servers.contains(where: { $0.id == row.server }) {
                servers.append((row.server, row.label))
            }
        }
        let order = ServerCatalog.modeNames + ServerCatalog.peerNames
        servers.sort { (order.firstIndex(of: $0.id) ?? 99) < (order.firstIndex(of: $1.id) ?? 99) }
        let labelWidth = 190, cellWidth = 104, cellHeight = 34, top = 96
        let width = max(960, labelWidth + cellWidth * max(1, report.workloads.count) + 10)
        let costServers = SVGCostPanel.servers(report)
        let costTop = top + cellHeight * servers.count + 70
        let height = report.costs.isEmpty ? top + cellHeight * servers.count + 40 : costTop + cellHeight * costServers.count + 40
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" \
            font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <text x="10" y="20" font-size="15" font-weight="bold">SocketServer modes and peers × workloads</text>
            <text x="10" y="38" fill="#444">\(escape(report.machine.summary)) · profile \(report.profile) · \(escape(report.startedAt))</text>
            <text x="10" y="54" fill="#444">cell: value (unit under the workload) and ratio to the C libevent peer (slow-50: to Python \
            threading); green = better, red = worse; grey = not run or failed</text>

            """
        for (column, workload) in report.workloads.enumerated() {
            let x = labelWidth + column * cellWidth + cellWidth / 2
            svg += "<text x=\"\(x)\" y=\"\(top - 20)\" text-anchor=\"middle\" font-weight=\"bold\">\(escape(workload.id))</text>\n"
            svg += "<text x=\"\(x)\" y=\"\(top - 7)\" text-anchor=\"middle\" fill=\"#555\">\(escape(workload.metric.rawValue))</text>\n"
        }
        for (line, server) in servers.enumerated() {
            let y = top + line * cellHeight
            svg += "<text x=\"10\" y=\"\(y + cellHeight / 2 + 4)\">\(escape(server.label))</text>\n"
            for (column, workload) in report.workloads.enumerated() {
                let x = labelWidth + column * cellWidth
                let row = workload.row(server.id)
                let hasValue = row.map { !$0.values.compactMap { $0 }.isEmpty } ?? false
                let reference = ResultTable.chartReference(for: workload)
                var ratio: Double?
                if row != nil, server.id == reference { ratio = 1 } else { ratio = row?.ratios[reference]?.median }
                var fill = hasValue ? color(ratio: ratio, higherIsBetter: workload.metric.higherIsBetter) : "#e6e6e6"
                if hasValue, let row, workload.metric == .allocationsPerRequest {
                    // Zero is the goal: colour by the count itself (0 green, 1 yellow, 8 or more red).
                    ratio = nil
                    fill = color(ratio: 1 / max(0.25, row.median), higherIsBetter: true)
                }
                svg += "<rect x=\"\(x + 1)\" y=\"\(y + 1)\" width=\"\(cellWidth - 2)\" height=\"\(cellHeight - 2)\" fill=\"\(fill)\"/>\n"
                guard let row, hasValue else {
                    svg += "<text x=\"\(x + cellWidth / 2)\" y=\"\(y + cellHeight / 2 + 4)\" text-anchor=\"middle\" fill=\"#888\">–</text>\n"
                    continue
                }
                let value = TableFormat.metric(row.median, workload.metric)
                let ratioText = ratio.map { RatioSummary.format($0) + "×" } ?? ""
                let warning = row.stalled > 0 ? " ⚠" : ""
                svg += "<text x=\"\(x + cellWidth / 2)\" y=\"\(y + 14)\" text-anchor=\"middle\" font-weight=\"bold\">\(escape(value + warning))</text>\n"
                svg += "<text x=\"\(x + cellWidth / 2)\" y=\"\(y + 27)\" text-anchor=\"middle\" fill=\"#333\">\(escape(ratioText))</text>\n"
            }
        }
        if !report.costs.isEmpty {
            svg += SVGCostPanel.render(
                report, servers: costServers, top: costTop, labelWidth: labelWidth, cellWidth: cellWidth * 2,
                cellHeight: cellHeight)
        }
        svg += "<text x=\"10\" y=\"\(height - 14)\" fill=\"#444\">⚠ = some connections stalled (a server that serves one connection at a time, or starved). Lower is better for B/conn and allocs/req.</text>\n"
        svg += "</svg>\n"
        return svg
    }

    /// Red (≤ 1/8 of the reference) → yellow (equal) → green (≥ 2×), on a log scale; grey without a ratio.
    static func color(ratio: Double?, higherIsBetter: Bool) -> String {
        guard let ratio, ratio > 0 else { return "#d9e2ec" }
        let goodness = log2(higherIsBetter ? ratio : 1 / ratio)
        let position = goodness < 0 ? max(-1, goodness / 3) : min(1, goodness)
        let (red, green): (Double, Double) = position < 0 ? (250, 230 + 150 * position) : (250 - 130 * position, 230)
        let blue = 120.0
        return String(format: "#%02x%02x%02x", Int(red), Int(max(80, green)), Int(blue))
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
