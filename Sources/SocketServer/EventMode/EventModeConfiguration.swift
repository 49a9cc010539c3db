extension EventMode {
    /// The limits and sizes of an `EventMode`; every field has a default that suits an echo-style server.
    ///
    /// Memory per connection is bounded by `maxBufferedInput + maxBufferedOutput` in the worst case; an idle
    /// connection holds no buffer at all (about 1 KB in total).
    public struct Configuration: Sendable {
        /// The number of event loops, each on its own thread. Default: the CPUs this process may use.
        public var loops: Int
        /// Above this many open connections the server stops accepting (the listener is disabled, new
        /// clients wait in the backlog) until one closes. Default nil: no limit but the descriptor limit.
        public var maxConnections: Int?
        /// A connection on which nothing is received (or, while output is queued, nothing sent) for this
        /// long is closed with `EventModeError.idleTimeout`. Default nil: never. A connection whose handler
        /// paused reading and which has nothing queued is not timed.
        public var idleTimeout: Duration?
        /// How long `serverClose()` lets open connections finish before closing them. Default 5 seconds.
        public var shutdownTimeout: Duration
        /// The largest single receive, into a buffer shared by the connections of a loop. Default 128 KiB.
        public var readChunkSize: Int
        /// The most input a handler may leave unconsumed (a partial line, a partial message); more closes
        /// the connection with `EventModeError.inputLimitExceeded`. Default 64 KiB.
        public var maxBufferedInput: Int
        /// When this much output is queued for a peer that does not read, the connection stops reading.
        /// Default 256 KiB.
        public var outputHighWatermark: Int
        /// Reading resumes once queued output falls to this. Default 64 KiB.
        public var outputLowWatermark: Int
        /// A write that would queue more than this closes the connection with
        /// `EventModeError.outputLimitExceeded`. Default 4 MiB.
        public var maxBufferedOutput: Int
        /// Sets `TCP_NODELAY` on accepted TCP connections, so small replies leave at once. Default true.
        public var disableNagleAlgorithm: Bool

        /// The defaults, with any field overridden by its argument.
        public init(
            loops: Int? = nil,
            maxConnections: Int? = nil,
            idleTimeout: Duration? = nil,
            shutdownTimeout: Duration = .seconds(5),
            readChunkSize: Int = 128 * 1024,
            maxBufferedInput: Int = 64 * 1024,
            outputHighWatermark: Int = 256 * 1024,
            outputLowWatermark: Int = 64 * 1024,
            maxBufferedOutput: Int = 4 * 1024 * 1024,
            disableNagleAlgorithm: Bool = true
        ) {
            self.loops = max(loops ?? EventLoopGroup.availableProcessorCount, 1)
            self.maxConnections = maxConnections.map { max($0, 1) }
            self.idleTimeout = idleTimeout
            self.shutdownTimeout = shutdownTimeout
            self.readChunkSize = max(readChunkSize, 1024)
            self.maxBufferedInput = max(maxBufferedInput, 1)
            self.outputHighWatermark = max(outputHighWatermark, 1)
            self.outputLowWatermark = min(max(outputLowWatermark, 0), max(outputHighWatermark, 1))
            self.maxBufferedOutput = max(maxBufferedOutput, max(outputHighWatermark, 1))
            self.disableNagleAlgorithm = disableNagleAlgorithm
        }
    }
}
