import Foundation

/// The chart's second panel: instructions and system calls per request (the deterministic costs), servers ×
/// cost workloads, each cell coloured by its ratio to the mode's floor (green at or under 1×, red far above;
/// peers, which are their own floors, in grey-blue).
enum SVGCostPanel {
    /// The servers of every cost table, in the catalog's order.
    static func servers(_ report: RunReport) -> [(id: String, label: String)] {
        var servers: [(id: String, label: String)] = []
        for cost in report.costs {
            for row in cost.rows where !servers.contains(where: { $0.id == row.server }) {
                servers.append((row.server, row.label))
            }
        }
        let order = ServerCatalog.modeNames + ServerCatalog.peerNames
        return servers.sorted { (order.firstIndex(of: $0.id) ?? 99) < (order.firstIndex(of: $1.id) ?? 99) }
    }

    static func render(
        _ report: RunReport, servers: [(id: String, label: String)], top: Int, labelWidth: Int, cellWidth: Int,
        cellHeight: Int
    ) -> String {
        var svg = "<text x=\"10\" y=\"\(top - 44)\" font-size=\"13\" font-weight=\"bold\">Cost per request "
            + "(callgrind instructions, strace system calls; long run − short run): the figures to decide with</text>\n"
        for (column, cost) in report.costs.enumerated() {
            let x = labelWidth + column * cellWidth + cellWidth / 2
            svg += "<text x=\"\(x)\" y=\"\(top - 20)\" text-anchor=\"middle\" font-weight=\"bold\">\(SVGChart.escape(cost.id))</text>\n"
            svg += "<text x=\"\(x)\" y=\"\(top - 7)\" text-anchor=\"middle\" fill=\"#555\">instructions · syscalls · vs floor</text>\n"
        }
        for (line, server) in servers.enumerated() {
            let y = top + line * cellHeight
            svg += "<text x=\"10\" y=\"\(y + cellHeight / 2 + 4)\">\(SVGChart.escape(server.label))</text>\n"
            for (column, cost) in report.costs.enumerated() {
                let x = labelWidth + column * cellWidth
                let row = cost.row(server.id)
                let ratio = cost.instructionRatio(server.id)
                let fill = row?.instructionsPerRequest == nil
                    ? "#e6e6e6" : SVGChart.color(ratio: ratio?.ratio, higherIsBetter: false)
                svg += "<rect x=\"\(x + 1)\" y=\"\(y + 1)\" width=\"\(cellWidth - 2)\" height=\"\(cellHeight - 2)\" fill=\"\(fill)\"/>\n"
                guard let row, let instructions = row.instructionsPerRequest else {
                    svg += "<text x=\"\(x + cellWidth / 2)\" y=\"\(y + cellHeight / 2 + 4)\" text-anchor=\"middle\" fill=\"#888\">–</text>\n"
                    continue
                }
                let first = String(format: "%.0f instr", instructions)
                    + (row.syscallsPerRequest.map { String(format: " · %.2f syscalls", $0) } ?? "")
                let second = ratio.map { String(format: "%.2f× %@", $0.ratio, $0.floor) } ?? "(peer)"
                svg += "<text x=\"\(x + cellWidth / 2)\" y=\"\(y + 14)\" text-anchor=\"middle\" font-weight=\"bold\">\(SVGChart.escape(first))</text>\n"
                svg += "<text x=\"\(x + cellWidth / 2)\" y=\"\(y + 27)\" text-anchor=\"middle\" fill=\"#333\">\(SVGChart.escape(second))</text>\n"
            }
        }
        return svg
    }
}
