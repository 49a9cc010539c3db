import ArgumentParser

/// `--delay-ms`: the slow handler of the echo services (and of the perf harness's slow-handler workload).
struct ReplyDelayOption: ParsableArguments {
    @Option(
        name: .customLong("delay-ms"),
        help: ArgumentHelp(
            "Sleep this many milliseconds before each reply: a slow handler (the perf harness's "
                + "slow-handler workload).",
            valueName: "ms")
    )
    var milliseconds = 0

    func validate() throws {
        guard (0...60_000).contains(milliseconds) else {
            throw ValidationError("--delay-ms must be between 0 and 60000.")
        }
    }

    /// The pause before each reply; nil for none.
    var replyDelay: Duration? { milliseconds > 0 ? .milliseconds(milliseconds) : nil }
}
