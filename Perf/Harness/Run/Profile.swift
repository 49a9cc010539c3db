import ArgumentParser

/// How long and how often each slice runs.
struct Profile: Sendable {
    let name: String
    /// Rounds of alternating slices (A B C … A B C …) per workload.
    let rounds: Int
    let warmupSeconds: Double
    let sliceSeconds: Double
    /// Rounds for the memory and allocation workloads, which are quiet and slow to set up.
    let quietRounds: Int
    /// Rounds at 1,000 connections, where a thread-per-connection server spends seconds setting up each slice.
    let heavyRounds: Int
    let settleSeconds: Double

    static let quick = Profile(
        name: "quick", rounds: 3, warmupSeconds: 0.1, sliceSeconds: 0.25, quietRounds: 1, heavyRounds: 2,
        settleSeconds: 0.3)
    static let full = Profile(
        name: "full", rounds: 7, warmupSeconds: 0.3, sliceSeconds: 1.0, quietRounds: 3, heavyRounds: 5,
        settleSeconds: 1.0)

    static func named(_ name: String) -> Profile? {
        [quick, full].first { $0.name == name }
    }
}
