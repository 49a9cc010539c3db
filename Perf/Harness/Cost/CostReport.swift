import Foundation

/// The deterministic cost of one workload: a row per server that ran it, and why the others did not.
struct CostReport: Codable, Sendable {
    var id: String
    var title: String
    var shortRequests: Int
    var longRequests: Int
    var rows: [CostRow] = []
    var skipped: [String: String] = [:]

    func row(_ id: String) -> CostRow? { rows.first { $0.server == id } }

    /// `server`'s instructions per request over its floor's (issue 13's pairing), when both were measured.
    func instructionRatio(_ server: String) -> (floor: String, ratio: Double)? {
        guard let floor = ServerCatalog.floor(of: server, workload: id.replacingOccurrences(of: "cost-", with: "")),
            let mine = row(server)?.instructionsPerRequest, let theirs = row(floor)?.instructionsPerRequest, theirs > 0
        else { return nil }
        return (floor, mine / theirs)
    }
}

/// One server's cost per request: user-space instructions (callgrind: every thread and forked child, libc,
/// libevent and the Swift runtime included) and system calls (strace -f -c), each the long run minus the short
/// run, divided by the extra requests.
struct CostRow: Codable, Sendable {
    var server: String
    var label: String
    var family: ServerSpec.Family
    var instructionsPerRequest: Double?
    var syscallsPerRequest: Double?
    /// System calls per request by name, those at 0.05 or more.
    var syscalls: [String: Double] = [:]
    var failure: String?

    /// "recvfrom 1.00, sendto 1.00, epoll_wait 0.10", largest first.
    var syscallSummary: String {
        syscalls.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(6)
            .map { String(format: "%@ %.2f", $0.key, $0.value) }.joined(separator: ", ")
    }
}
