/// The ratio of a server's per-round values to a reference's, from alternating slices: the median of the
/// per-round ratios and their spread (lowest and highest). A ratio whose spread contains 1.0 is a tie.
struct RatioSummary: Codable, Sendable {
    var median: Double
    var low: Double
    var high: Double
    var rounds: Int

    /// Pairs round r of `values` with round r of `reference`; nil when no round has both.
    init?(_ values: [Double?], reference: [Double?]) {
        var ratios: [Double] = []
        for (value, base) in zip(values, reference) {
            if let value, let base, base > 0 { ratios.append(value / base) }
        }
        guard !ratios.isEmpty else { return nil }
        ratios.sort()
        median = Self.median(ratios)
        low = ratios[0]
        high = ratios[ratios.count - 1]
        rounds = ratios.count
    }

    /// True when the spread does not separate the two servers.
    var isTie: Bool { low <= 1.0 && high >= 1.0 }

    /// "1.23× [1.10–1.31]".
    var text: String {
        rounds > 1 ? "\(Self.format(median))× [\(Self.format(low))–\(Self.format(high))]" : "\(Self.format(median))×"
    }

    static func format(_ ratio: Double) -> String {
        ratio >= 10 ? String(Int(ratio.rounded())) : String(format: "%.2f", ratio)
    }

    static func median(_ sorted: [Double]) -> Double {
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}

import Foundation
