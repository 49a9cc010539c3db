/// The run as Markdown (Perf/results/latest.md), for the README.
enum MarkdownReport {
    static func render(_ report: RunReport) -> String {
        var text = "# SocketServer perf results\n\n"
        text += "- Machine: \(report.machine.summary)\n"
        text += "- Tree: `\(report.commit)` (a `-dirty` suffix: uncommitted changes were in the tree)\n"
        text += "- Run: \(report.startedAt), profile `\(report.profile)`, \(report.rounds) alternating rounds of "
            + "\(report.sliceSeconds) s per server and workload\n"
        text += "- Pinning: \(report.pinning)\n"
        text += "- Load generator: \(report.loadGeneratorCeiling)\n\n"
        text += "Ratios are medians of per-round ratios with their spread [lowest–highest]; a spread that contains "
            + "1.00 is a tie. CPU µs/req is the server's own CPU time (user + system, threads and children) per request.\n\n"
        text += "![chart](latest.svg)\n\n## Targets (issues 6, 11, 13, 14)\n\n| target | verdict | measured |\n|---|---|---|\n"
        for verdict in report.targets {
            text += "| \(verdict.target) | \(verdict.outcome.rawValue) | \(verdict.measured) |\n"
        }
        if !report.costs.isEmpty {
            text += "\n## Cost per request: the figures to decide with\n\n" + ResultTable.costExplanation + "\n"
        }
        for cost in report.costs {
            text += "\n### \(cost.title) (`\(cost.id)`, \(cost.longRequests) − \(cost.shortRequests) requests)\n\n"
            text += "| " + ResultTable.costHeader.joined(separator: " | ") + " |\n"
            text += "|" + ResultTable.costHeader.map { _ in "---" }.joined(separator: "|") + "|\n"
            for row in ResultTable.costRows(cost) { text += "| " + row.joined(separator: " | ") + " |\n" }
            for row in cost.rows { if let failure = row.failure { text += "\n`\(row.server)`: \(failure).\n" } }
            if !cost.skipped.isEmpty {
                text += "\nSkipped: "
                    + cost.skipped.sorted(by: { $0.key < $1.key }).map { "\($0.key) (\($0.value))" }
                    .joined(separator: "; ") + ".\n"
            }
        }
        for workload in report.workloads {
            text += "\n## \(workload.title) (`\(workload.id)`)\n\n"
            text += "| " + ResultTable.header.joined(separator: " | ") + " |\n"
            text += "|" + ResultTable.header.map { _ in "---" }.joined(separator: "|") + "|\n"
            for row in ResultTable.rows(workload) { text += "| " + row.joined(separator: " | ") + " |\n" }
            for row in workload.rows { if let failure = row.failure { text += "\n`\(row.server)`: \(failure).\n" } }
            if !workload.skipped.isEmpty {
                text += "\nSkipped: "
                    + workload.skipped.sorted(by: { $0.key < $1.key }).map { "\($0.key) (\($0.value))" }
                    .joined(separator: "; ") + ".\n"
            }
        }
        if !report.missingServers.isEmpty {
            text += "\n## Not in this run\n\n"
            for (server, reason) in report.missingServers.sorted(by: { $0.key < $1.key }) {
                text += "- `\(server)`: \(reason)\n"
            }
        }
        if !report.notes.isEmpty {
            text += "\n## Notes\n\n" + report.notes.map { "- \($0)\n" }.joined()
        }
        return text
    }
}
