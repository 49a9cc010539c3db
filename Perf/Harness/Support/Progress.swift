import Glibc

/// Progress lines on the terminal, flushed at once, each stamped with the seconds since the run began.
struct Progress: Sendable {
    let started = monotonicSeconds()

    func note(_ text: String) {
        let elapsed = monotonicSeconds() - started
        print(String(format: "[%6.1fs] ", elapsed) + text)
        fflush(nil)
    }
}
