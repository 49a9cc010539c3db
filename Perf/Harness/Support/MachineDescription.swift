import Glibc

/// The machine a run came from: cores, CPU model, kernel, memory, toolchains.
struct MachineDescription: Codable, Sendable {
    var cores: Int
    var cpuModel: String
    var kernel: String
    var memoryGiB: Double
    var openFileLimit: UInt64

    static func current() -> MachineDescription {
        let cpuinfo = readText("/proc/cpuinfo") ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let memory = (readText("/proc/meminfo") ?? "").split(separator: "\n").first { $0.hasPrefix("MemTotal:") }
            .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Double($0) } ?? 0
        return MachineDescription(
            cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), cpuModel: model, kernel: release,
            memoryGiB: (memory / 1_048_576 * 10).rounded() / 10, openFileLimit: currentOpenFileLimit())
    }

    var summary: String {
        "\(cores) cores, \(cpuModel), Linux \(kernel), \(memoryGiB) GiB"
    }
}

import Foundation
