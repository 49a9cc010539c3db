import Glibc

/// Nanoseconds on the monotonic clock; one `clock_gettime` call (vDSO, no syscall).
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// Seconds on the monotonic clock, for coarse timing of phases.
func monotonicSeconds() -> Double {
    Double(monotonicNanoseconds()) / 1e9
}

/// Sleeps for `seconds` (at least 1 µs).
func sleepSeconds(_ seconds: Double) {
    usleep(UInt32(max(1, seconds * 1e6)))
}
