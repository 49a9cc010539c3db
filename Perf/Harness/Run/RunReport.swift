/// Everything one run measured, as written to Perf/results/latest.json.
struct RunReport: Codable, Sendable {
    var machine: MachineDescription
    var profile: String
    /// `git describe --always --dirty` of the tree the run was built from.
    var commit: String = ""
    var startedAt: String
    var rounds: Int
    var sliceSeconds: Double
    var pinning: String
    var workloads: [WorkloadReport] = []
    /// Instructions and system calls per request (callgrind, strace): the figures to decide with.
    var costs: [CostReport] = []
    var missingServers: [String: String] = [:]
    var targets: [TargetVerdict] = []
    var loadGeneratorCeiling: String = ""
    var notes: [String] = []
}

/// One workload: a row per server that ran it, and why the others did not.
struct WorkloadReport: Codable, Sendable {
    var id: String
    var title: String
    var metric: Workload.Metric
    var delayMilliseconds = 0
    var rows: [ServerRow] = []
    var skipped: [String: String] = [:]

    func row(_ id: String) -> ServerRow? { rows.first { $0.server == id } }
}

/// One server in one workload: its slices and their summary.
struct ServerRow: Codable, Sendable {
    var server: String
    var label: String
    var family: ServerSpec.Family
    /// The metric of each round (nil for a round whose slice failed).
    var values: [Double?] = []
    var slices: [LoadResult] = []
    var median: Double = 0
    var p50Micros: Double = 0
    var p99Micros: Double = 0
    var p999Micros: Double = 0
    /// Server CPU per request over all slices, in microseconds.
    var cpuMicrosPerRequest: Double?
    /// Load-generator CPU per second of its window, over all slices (1.0 = one core busy).
    var loadCPUShare: Double?
    var peakRSSBytes: UInt64 = 0
    var errors: UInt64 = 0
    var stalled: UInt64 = 0
    /// Seconds from SIGTERM to exit, when stopped idle.
    var stopSeconds: Double?
    var failure: String?
    /// Ratios to each other server in the workload, keyed by its id.
    var ratios: [String: RatioSummary] = [:]
}
