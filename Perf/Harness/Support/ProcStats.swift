import Glibc

/// What /proc says about a server process: its CPU time (its own, its threads', its reaped children's and
/// its live children's) and its memory.
struct ProcessSample: Sendable {
    var cpuSeconds: Double
    var residentBytes: UInt64
    var peakResidentBytes: UInt64
    /// Threads of the process itself (not its children).
    var threads: UInt64

    /// Reads /proc/PID/stat and /proc/PID/status, plus /proc/CHILD/stat for each live child (forking
    /// servers keep a child per connection, whose time reaches the parent's counters only once reaped).
    static func read(pid: Int32) -> ProcessSample? {
        guard let ownTimes = cpuTicks(pid: pid, includingReapedChildren: true) else { return nil }
        var ticks = ownTimes
        for child in childProcesses(of: pid) {
            ticks += cpuTicks(pid: child, includingReapedChildren: true) ?? 0
        }
        let status = readText("/proc/\(pid)/status") ?? ""
        return ProcessSample(
            cpuSeconds: Double(ticks) / Double(sysconf(Int32(_SC_CLK_TCK))),
            residentBytes: kilobytesField("VmRSS:", in: status) * 1024,
            peakResidentBytes: kilobytesField("VmHWM:", in: status) * 1024,
            threads: kilobytesField("Threads:", in: status)
        )
    }

    /// utime + stime (+ cutime + cstime) in clock ticks, from the fields after the command's closing ')'.
    static func cpuTicks(pid: Int32, includingReapedChildren: Bool) -> UInt64? {
        guard let fields = statFields(pid: pid), fields.count > 14 else { return nil }
        let own = (UInt64(fields[11]) ?? 0) + (UInt64(fields[12]) ?? 0)
        let reaped = (UInt64(fields[13]) ?? 0) + (UInt64(fields[14]) ?? 0)
        return includingReapedChildren ? own + reaped : own
    }

    /// The fields of /proc/PID/stat after the command name; index 0 is the state, 1 the parent's pid.
    static func statFields(pid: Int32) -> [Substring]? {
        guard let text = readText("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// Live processes whose parent is `pid`, found by scanning /proc (a few hundred entries).
    static func childProcesses(of pid: Int32) -> [Int32] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var children: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let candidate = Int32(name), candidate != pid else { continue }
            if let fields = statFields(pid: candidate), fields.count > 1, Int32(fields[1]) == pid {
                children.append(candidate)
            }
        }
        return children
    }

    /// The number after `name` in /proc/PID/status (kB for the memory fields, a plain count for Threads:).
    private static func kilobytesField(_ name: String, in status: String) -> UInt64 {
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            let number = line.dropFirst(name.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? ""
            return UInt64(number) ?? 0
        }
        return 0
    }
}

/// The whole content of a small text file (for /proc files, whose size stat() does not know).
func readText(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// CPU seconds this process has used (user + system), from getrusage.
func ownCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
    let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    return user + system
}

/// Raises this process's open-file limit to its hard limit (10,000 idle connections need it); children inherit.
func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(RLIMIT_NOFILE_CONSTANT, &limit) == 0 else { return }
    limit.rlim_cur = limit.rlim_max
    setrlimit(RLIMIT_NOFILE_CONSTANT, &limit)
}

/// The open-file limit now in force.
func currentOpenFileLimit() -> UInt64 {
    var limit = rlimit()
    getrlimit(RLIMIT_NOFILE_CONSTANT, &limit)
    return UInt64(limit.rlim_cur)
}

#if canImport(Glibc)
// RLIMIT_NOFILE is an enum case of __rlimit_resource in Glibc's Swift import.
let RLIMIT_NOFILE_CONSTANT = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#endif
