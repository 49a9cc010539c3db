import Glibc
import Histogram

/// The phases of one load run (warm-up, then the measured window) and what is sampled at their edges:
/// server CPU and memory from /proc, the load generator's own CPU, the server's allocation counter.
struct MeasuredWindow {
    let serverPID: Int32
    let allocationCounter: AllocationCounter?
    let warmup: Double
    let duration: Double
    private(set) var warmupEnd: UInt64 = 0
    private(set) var end: UInt64 = 0
    private(set) var isMeasuring = false
    private var startTime: UInt64 = 0
    private var startSample: ProcessSample?
    private var startLoadCPU = 0.0
    private var startAllocations: UInt64 = 0
    var latencies = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    var result = LoadResult()

    init(serverPID: Int32, allocationCounter: AllocationCounter?, warmup: Double, duration: Double) {
        self.serverPID = serverPID
        self.allocationCounter = allocationCounter
        self.warmup = warmup
        self.duration = duration
        startClock()
        let before = ProcessSample.read(pid: serverPID)
        result.serverRSSBeforeBytes = before?.residentBytes ?? 0
        result.serverThreadsBefore = before?.threads ?? 0
    }

    /// Starts the warm-up now: engines call it once their connections are set up, so that connecting
    /// 1,000 sockets does not eat into the warm-up.
    mutating func startClock() {
        warmupEnd = monotonicNanoseconds() + UInt64(warmup * 1e9)
        end = warmupEnd + UInt64(duration * 1e9)
    }

    /// Moves from warm-up to measuring once the warm-up time is over and the engine says the server has
    /// settled (every connection answered once, or no new one answered for a while: the rest are starved);
    /// returns false once the measured window is over.
    mutating func advance(now: UInt64, settled: Bool = true) -> Bool {
        if !isMeasuring && now >= warmupEnd && (settled || now >= warmupEnd + 5_000_000_000) { begin(now: now) }
        return !isMeasuring || now < end
    }

    /// Starts the measured window now (also used by runs without a warm-up).
    mutating func begin(now: UInt64) {
        isMeasuring = true
        startTime = now
        end = now + UInt64(duration * 1e9)
        startSample = ProcessSample.read(pid: serverPID)
        startLoadCPU = ownCPUSeconds()
        startAllocations = allocationCounter?.value ?? 0
        latencies.reset()
        result.requests = 0
        result.bytes = 0
        result.errors = 0
    }

    /// Records one completed request that started at `started` (nanoseconds).
    mutating func complete(started: UInt64, now: UInt64) {
        guard isMeasuring else { return }
        result.requests += 1
        _ = latencies.record(max(1, (now &- started) / 1000))
    }

    mutating func fail() {
        if isMeasuring { result.errors += 1 }
    }

    /// Closes the window and fills in the result.
    mutating func finish(now: UInt64) -> LoadResult {
        if !isMeasuring { begin(now: now) }
        let endSample = ProcessSample.read(pid: serverPID)
        result.seconds = Double(now - startTime) / 1e9
        result.loadCPUSeconds = ownCPUSeconds() - startLoadCPU
        if let first = startSample, let last = endSample {
            result.serverCPUSeconds = max(0, last.cpuSeconds - first.cpuSeconds)
        }
        result.serverRSSBytes = endSample?.residentBytes ?? 0
        result.serverPeakRSSBytes = endSample?.peakResidentBytes ?? 0
        result.serverThreads = endSample?.threads ?? 0
        if let counter = allocationCounter { result.serverAllocations = counter.value &- startAllocations }
        if latencies.totalCount > 0 {
            result.p50Micros = Double(latencies.valueAtPercentile(50))
            result.p99Micros = Double(latencies.valueAtPercentile(99))
            result.p999Micros = Double(latencies.valueAtPercentile(99.9))
        }
        return result
    }
}

/// The server's allocation count, shared through the 4 KiB file the malloc_count preload maps.
final class AllocationCounter {
    private let page: UnsafeMutableRawPointer

    init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let mapped = mmap(nil, 4096, PROT_READ, MAP_SHARED, fd, 0), mapped != MAP_FAILED else { return nil }
        page = mapped
    }

    deinit { munmap(page, 4096) }

    var value: UInt64 {
        page.assumingMemoryBound(to: UInt64.self).pointee
    }
}
