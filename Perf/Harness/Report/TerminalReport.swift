/// The run's tables and target verdicts as plain text for the terminal.
enum TerminalReport {
    static func render(_ report: RunReport) -> String {
        var text = "\nSocketServer perf — profile \(report.profile), \(report.rounds) alternating rounds of "
            + "\(report.sliceSeconds) s per server\nmachine: \(report.machine.summary)\ntree: \(report.commit)\npinning: \(report.pinning)\n"
        for workload in report.workloads {
            text += "\n== \(workload.title) [\(workload.id)]\n"
            text += TableFormat.columns([ResultTable.header] + ResultTable.rows(workload)) + "\n"
            for row in workload.rows { if let failure = row.failure { text += "   \(row.server): \(failure)\n" } }
            for (server, reason) in workload.skipped.sorted(by: { $0.key < $1.key }) {
                text += "   skipped \(server): \(reason)\n"
            }
        }
        if !report.costs.isEmpty { text += "\n" + ResultTable.costExplanation + "\n" }
        for cost in report.costs {
            text += "\n== cost: \(cost.title) [\(cost.id); \(cost.longRequests) − \(cost.shortRequests) requests]\n"
            text += TableFormat.columns([ResultTable.costHeader] + ResultTable.costRows(cost)) + "\n"
            for row in cost.rows { if let failure = row.failure { text += "   \(row.server): \(failure)\n" } }
            for (server, reason) in cost.skipped.sorted(by: { $0.key < $1.key }) {
                text += "   skipped \(server): \(reason)\n"
            }
        }
        if !report.missingServers.isEmpty {
            text += "\nnot in this run:\n"
            for (server, reason) in report.missingServers.sorted(by: { $0.key < $1.key }) {
                text += "   \(server): \(reason)\n"
            }
        }
        text += "\nload generator: \(report.loadGeneratorCeiling)\n"
        text += "\ntargets (issues 6, 11, 13, 14):\n"
        text += TableFormat.columns(report.targets.map { [$0.target, $0.outcome.rawValue, $0.measured] }) + "\n"
        for note in report.notes { text += "note: \(note)\n" }
        return text
    }
}
