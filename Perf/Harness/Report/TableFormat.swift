import Foundation

/// Number formats shared by the terminal, Markdown and SVG reports.
enum TableFormat {
    static func metric(_ value: Double, _ metric: Workload.Metric) -> String {
        switch metric {
        case .requestsPerSecond:
            if value >= 10_000 { return String(format: "%.0fk", value / 1000) }
            if value >= 1000 { return String(format: "%.1fk", value / 1000) }
            return String(format: "%.0f", value)
        case .mebibytesPerSecond: return String(format: "%.0f", value)
        case .bytesPerConnection: return String(format: "%.0f", value)
        case .allocationsPerRequest: return String(format: "%.2f", value)
        }
    }

    static func micros(_ value: Double) -> String {
        value >= 10_000 ? String(format: "%.1fms", value / 1000) : String(format: "%.0f", value)
    }

    static func mebibytes(_ bytes: UInt64) -> String {
        String(format: "%.1f", Double(bytes) / 1_048_576)
    }

    /// Lays out rows as fixed-width columns (first column left-aligned, the rest right-aligned).
    static func columns(_ rows: [[String]]) -> String {
        guard let width = rows.map(\.count).max() else { return "" }
        var widths = [Int](repeating: 0, count: width)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        return rows.map { row in
            row.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return index == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
