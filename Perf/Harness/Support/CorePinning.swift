/// Which cores the server and the load generator run on (through `taskset -c`): two different ones when
/// the harness may use two or more, none when it has one (said in the output).
struct CorePinning: Sendable {
    let serverCore: Int?
    let loadCore: Int?

    static func detect() -> CorePinning {
        let status = readText("/proc/self/status") ?? ""
        let list = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
            .map { String($0.dropFirst("Cpus_allowed_list:".count)).trimmingCharacters(in: .whitespaces) } ?? ""
        var cores: [Int] = []
        for part in list.split(separator: ",") {
            let bounds = part.split(separator: "-").compactMap { Int($0) }
            if bounds.count == 2 { cores += Array(bounds[0]...bounds[1]) } else if let one = bounds.first { cores.append(one) }
        }
        guard cores.count >= 2, PeerTools.which("taskset") != nil else { return CorePinning(serverCore: nil, loadCore: nil) }
        return CorePinning(serverCore: cores[0], loadCore: cores[1])
    }

    var description: String {
        guard let serverCore, let loadCore else {
            return "NOT pinned: one core (or no taskset) — server and load generator share it, ratios only"
        }
        return "server on core \(serverCore), load generator on core \(loadCore) (taskset)"
    }

    func serverPrefix() -> [String] { serverCore.map { ["taskset", "-c", String($0)] } ?? [] }
    func loadPrefix() -> [String] { loadCore.map { ["taskset", "-c", String($0)] } ?? [] }
}

import Foundation
