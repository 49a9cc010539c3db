import CSocketServerShims

/// Blocks the calling thread for `duration` (the whole of it, across signals): the `--delay-ms` slow handler.
func pause(for duration: Duration) {
    let (seconds, attoseconds) = duration.components
    guard seconds > 0 || attoseconds > 0 else { return }
    CSocketServerShims_sleep(seconds, attoseconds / 1_000_000_000)
}
